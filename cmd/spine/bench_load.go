package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/schemas/canon"
)

// The HTTP lookup load run while ingesting.
//
// The load generator runs in a child process (this binary, re-executed
// with lookupChildEnv set), the way a real client of the API runs outside
// the engine: in the bench's own process its 32 workers and its dispatcher
// would share the engine's Go scheduler, so every lookup would also be
// timed by how long the client's goroutines wait behind the engine's
// CPU-bound ones, and a late dispatcher would silently send fewer requests.
//
// Protocol: the parent writes one JSON lookupChildConfig line on the
// child's stdin, then one line per phase change (the phase number). The
// child writes one line per finished request on stdout ("r PHASE
// END_UNIX_NS SERVICE_NS SCHEDULED_NS CODE") and one per request dropped
// because the queue was full ("d PHASE"). Closing stdin stops the child.

// lookupChildEnv, set to "lookup" in the environment of `spine bench`,
// makes it the lookup load generator instead of a bench run.
const lookupChildEnv = "SPINE_BENCH_CHILD"

type lookupChildConfig struct {
	URL     string             `json:"url"`   // http://host:port/v1/profiles?
	Token   string             `json:"token"` // bearer secret: on stdin, so ps does not show it
	Rate    int                `json:"rate"`  // requests a second while loading
	Workers int                `json:"workers"`
	Seed    int64              `json:"seed"`
	Budget  int64              `json:"budget"` // requests at most, over the whole run
	IDs     []canon.Identifier `json:"ids"`
	// Realtime is the SCHED_FIFO priority the client runs at (0: normal):
	// on a machine the engine saturates, a client at normal priority
	// waits for a CPU before it reads each answer, and times that wait
	// as the server's; a client on another machine would not.
	Realtime int `json:"realtime,omitempty"`
}

type lookupStats struct {
	mu       sync.Mutex
	service  map[int32][]float64 // by phase
	sched    map[int32][]float64
	notFound map[int32][]float64 // service time of the 404 answers, by phase
	codes    map[string]int
	dropped  atomic.Int64
}

func (s *lookupStats) add(phase int32, service, sched float64, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.service == nil {
		s.service, s.sched, s.notFound, s.codes = map[int32][]float64{}, map[int32][]float64{}, map[int32][]float64{}, map[string]int{}
	}
	s.service[phase] = append(s.service[phase], service)
	s.sched[phase] = append(s.sched[phase], sched)
	if code == "404" {
		// An identifier the engine does not hold misses every cache and
		// reads Badger: timed apart, as it takes another path.
		s.notFound[phase] = append(s.notFound[phase], service)
	}
	s.codes[code]++
}

// lookupIDs are the identifiers the load asks for: every person's.
func lookupIDs(t gen.Truth) []canon.Identifier {
	var out []canon.Identifier
	for _, p := range t.Persons {
		out = append(out, p.Identifiers...)
	}
	return out
}

// lookupLoad runs the load generator in a child process, forwards the
// bench's phase changes to it and records what it measured. It returns
// when ctx ends (after the child has reported everything it sent) or when
// the child exits.
func (b *benchRun) lookupLoad(ctx context.Context, ids []canon.Identifier) error {
	if len(ids) == 0 {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("lookup load: find this binary: %w", err)
	}
	// Not CommandContext: the child is stopped by closing its stdin, so
	// that it reports the requests in flight before it exits.
	cmd := exec.Command(exe, "bench")
	cmd.Env = append(os.Environ(), lookupChildEnv+"=lookup")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("lookup load: %w", err)
	}
	// A pipe of our own, not StdoutPipe: startChild waits for the child
	// at once, and Wait closes a StdoutPipe when the child exits, which
	// would lose the samples it wrote last (read: file already closed).
	stdout, childOut, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("lookup load: %w", err)
	}
	defer stdout.Close()
	cmd.Stdout = childOut
	exited, err := startChild(cmd)
	_ = childOut.Close() // the child holds its copy; EOF comes when it exits
	if err != nil {
		return fmt.Errorf("lookup load: start the child: %w", err)
	}
	addr, prio := b.o.HTTP, 0
	if b.replica != nil {
		addr = b.replica.addr
		if b.replica.prio > 0 {
			// Above the replica: the client measures, and must not wait
			// for the server it times to give it a CPU.
			prio = b.replica.prio + 1
		}
	}
	cfg := lookupChildConfig{
		URL: "http://" + addr + "/v1/profiles?", Token: b.token, Rate: b.cfg.lookupRate, Workers: 32, Realtime: prio,
		Seed: b.cfg.seed, Budget: int64(float64(b.cfg.lookupRate) * b.cfg.limit.Seconds()), IDs: ids,
	}
	var readErr error
	read := make(chan struct{})
	go func() {
		defer close(read)
		readErr = b.readLookupSamples(stdout)
	}()
	writeErr := b.feedLookupChild(ctx, stdin, &cfg, read)
	_ = stdin.Close()
	<-read
	// The child has closed its stdout; if it is stuck past that, it goes.
	var werr error
	select {
	case werr = <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		werr = <-exited
	}
	if werr != nil {
		werr = fmt.Errorf("lookup load: child: %w", werr)
	}
	return errors.Join(writeErr, readErr, werr)
}

// feedLookupChild sends the configuration, then every phase change until
// ctx ends or the child stops reading (read closed).
func (b *benchRun) feedLookupChild(ctx context.Context, w io.Writer, cfg *lookupChildConfig, read <-chan struct{}) error {
	if err := json.NewEncoder(w).Encode(cfg); err != nil {
		return fmt.Errorf("lookup load: send the configuration: %w", err)
	}
	// Phase changes are rare; polling every 5 ms starts and stops the load
	// within 5 ms of them.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last := int32(-1)
	for {
		if ph := b.phase.Load(); ph != last {
			if _, err := fmt.Fprintf(w, "%d\n", ph); err != nil {
				// A child that stopped on its own (its budget spent)
				// closes its end first; only a child still reporting
				// makes this an error.
				select {
				case <-read:
					return nil
				case <-time.After(time.Second):
					return fmt.Errorf("lookup load: send the phase: %w", err)
				}
			}
			last = ph
		}
		select {
		case <-ctx.Done():
			return nil
		case <-read:
			return nil
		case <-tick.C:
		}
	}
}

// readLookupSamples records the child's lines until it closes stdout.
func (b *benchRun) readLookupSamples(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "d":
			b.lookups.dropped.Add(1)
		case len(f) == 6 && f[0] == "r":
			ph, err1 := strconv.ParseInt(f[1], 10, 32)
			end, err2 := strconv.ParseInt(f[2], 10, 64)
			svc, err3 := strconv.ParseInt(f[3], 10, 64)
			sch, err4 := strconv.ParseInt(f[4], 10, 64)
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				return fmt.Errorf("lookup load: bad sample %q: %w", sc.Text(), err)
			}
			b.lookups.add(int32(ph), float64(svc)/1e6, float64(sch)/1e6, f[5])
			b.tl.addLookup(time.Unix(0, end), float64(svc)/1e6)
		default:
			return fmt.Errorf("lookup load: bad line %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("lookup load: read samples: %w", err)
	}
	return nil
}

// lookupChild is the child's main: it reads its configuration and phase
// changes from stdin and writes its samples to stdout.
func lookupChild(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := bufio.NewReader(stdin)
	var cfg lookupChildConfig
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("lookup child: read the configuration: %w", err)
	}
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("lookup child: decode the configuration: %w", err)
	}
	if cfg.Rate <= 0 || cfg.Workers <= 0 || len(cfg.IDs) == 0 {
		return errors.New("lookup child: configuration needs a rate, workers and identifiers")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("lookup child: URL %q: want http://host:port/path?", cfg.URL)
	}
	if cfg.Realtime > 0 {
		if err := setRealtime(cfg.Realtime); err != nil {
			return fmt.Errorf("lookup child: %w", err)
		}
	}
	var phase atomic.Int32
	phase.Store(phaseSetup)
	changed := make(chan struct{}, 1)
	// Phase changes until the parent closes stdin, which ends the run (a
	// parent that dies closes it too). The reader is not waited for: a
	// read cannot be cancelled, and it ends with stdin or the process.
	go func() {
		defer cancel()
		for {
			l, err := in.ReadString('\n')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(l))
			if err != nil {
				return
			}
			phase.Store(int32(n))
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()

	out := newSampleWriter(stdout)
	var flusher sync.WaitGroup
	flushCtx, stopFlush := context.WithCancel(context.Background())
	flusher.Go(func() { out.flushEvery(flushCtx, 100*time.Millisecond) })

	jobs := make(chan lookupJob, 2*cfg.Rate)
	var workers sync.WaitGroup
	for range cfg.Workers {
		workers.Go(func() {
			conn := &lookupConn{addr: u.Host, auth: "Bearer " + cfg.Token}
			defer conn.close()
			for j := range jobs {
				if ctx.Err() != nil {
					continue // stopping: what is queued is not sent
				}
				start := time.Now()
				status, err := conn.get(u.Path + "?" + url.Values{"type": {string(j.id.Type)}, "value": {j.id.Value}}.Encode())
				code := "error"
				if err == nil {
					code = strconv.Itoa(status)
				} else if ctx.Err() != nil {
					continue
				}
				end := time.Now()
				out.sample(j.phase, end, end.Sub(start), end.Sub(j.due), code)
			}
		})
	}
	dispatch(ctx, &cfg, &phase, changed, jobs, out)
	close(jobs)
	workers.Wait()
	stopFlush()
	flusher.Wait()
	out.flush()
	return nil
}

// lookupConn is one worker's keep-alive connection to the API: the worker
// writes a request and reads its response on its own goroutine, as
// wrk-style load generators do. net/http's Transport hands each round trip
// to a reader and a writer goroutine of the connection, three wake-ups a
// request instead of one, and while ingest keeps the CPUs busy each
// wake-up waits for a CPU and adds to the latency measured.
type lookupConn struct {
	addr, auth string
	c          net.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
}

// lookupTimeout bounds a request from dialing (when the connection is
// new) to the end of its response.
const lookupTimeout = 10 * time.Second

// get sends GET target and reads the whole response. After an error, or a
// response that closes the connection, the next get dials again. A kept
// connection the server closed while idle fails before any byte of the
// response; then get dials once more and sends again, as net/http's
// Transport does for an idempotent request.
func (l *lookupConn) get(target string) (status int, err error) {
	deadline := time.Now().Add(lookupTimeout)
	status, answered, err := l.roundTrip(target, deadline)
	if err != nil && !answered && !isTimeout(err) {
		status, _, err = l.roundTrip(target, deadline)
	}
	return status, err
}

// roundTrip is one attempt of get. answered is false only when a kept
// connection failed before any byte of the response: the server closed
// it, and the request can be sent again on a new one.
func (l *lookupConn) roundTrip(target string, deadline time.Time) (status int, answered bool, err error) {
	reused := l.c != nil
	if !reused {
		c, err := net.DialTimeout("tcp", l.addr, time.Until(deadline))
		if err != nil {
			return 0, true, err // nothing to retry on
		}
		l.c, l.br, l.bw = c, bufio.NewReaderSize(c, 16<<10), bufio.NewWriterSize(c, 1<<10)
	}
	if err := l.c.SetDeadline(deadline); err != nil {
		l.close()
		return 0, !reused, err
	}
	fmt.Fprintf(l.bw, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n\r\n", target, l.addr, l.auth)
	if err := l.bw.Flush(); err != nil {
		l.close()
		return 0, !reused, err
	}
	if _, err := l.br.Peek(1); err != nil {
		l.close()
		return 0, !reused, err
	}
	resp, err := http.ReadResponse(l.br, nil)
	if err != nil {
		l.close()
		return 0, true, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		l.close()
		return 0, true, err
	}
	if resp.Close {
		l.close()
	}
	return resp.StatusCode, true, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (l *lookupConn) close() {
	if l.c != nil {
		l.c.Close()
		l.c = nil
	}
}

// exactSleep is the longest wait before a due request the dispatcher
// sleeps in the kernel's timer rather than a Go timer.
const exactSleep = 4 * time.Millisecond

type lookupJob struct {
	due   time.Time // when the open-loop schedule meant it to be sent
	phase int32
	id    canon.Identifier
}

// dispatch sends lookups open-loop: while the phase is a loading one, the
// i-th request since the phase began is due at start + i/rate, whatever
// the dispatcher's own delays, so a late dispatcher sends the requests it
// owes at once (their wait counts in the scheduled latency) instead of
// sending fewer. A request that finds the queue full is dropped and
// counted. It returns when ctx ends or the budget is spent.
func dispatch(ctx context.Context, cfg *lookupChildConfig, phase *atomic.Int32, changed <-chan struct{}, jobs chan<- lookupJob, out *sampleWriter) {
	rng := mrand.New(mrand.NewPCG(uint64(cfg.Seed), 7))
	interval := time.Second / time.Duration(cfg.Rate)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var (
		cur   = int32(-1)
		start time.Time
		i     int64
		sent  int64
	)
	for sent < cfg.Budget {
		if ph := phase.Load(); ph != cur {
			cur, start, i = ph, time.Now(), 0
		}
		wait := time.Hour // paused: until the phase changes
		var next time.Time
		if lookupPhase(cur) {
			now := time.Now()
			for ; sent < cfg.Budget; i++ {
				due := start.Add(time.Duration(i) * interval)
				if due.After(now) {
					wait, next = due.Sub(now), due
					break
				}
				select {
				case jobs <- lookupJob{due: due, phase: cur, id: cfg.IDs[rng.IntN(len(cfg.IDs))]}:
					sent++
				default:
					out.drop(cur)
				}
			}
		}
		if sent >= cfg.Budget {
			return
		}
		// The next request is due within a few milliseconds: a Go timer
		// could send it up to a millisecond late (sleepExactly), and the
		// scheduled latency would count that as the server's.
		if wait <= exactSleep {
			// The requests just queued run first: while this goroutine's
			// thread sleeps in the kernel, a worker readied onto its P
			// waits, when no P is idle, until the runtime's monitor takes
			// the P back (20 µs to 10 ms).
			runtime.Gosched()
			sleepExactly(time.Until(next))
			if ctx.Err() != nil {
				return
			}
			continue
		}
		timer.Reset(wait - exactSleep/2)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-timer.C:
		}
	}
}

// sampleWriter buffers the child's output lines; flushEvery sends them on
// so that the parent's progress line sees them within its second.
type sampleWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newSampleWriter(w io.Writer) *sampleWriter {
	return &sampleWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

func (s *sampleWriter) sample(phase int32, end time.Time, service, sched time.Duration, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "r %d %d %d %d %s\n", phase, end.UnixNano(), service.Nanoseconds(), sched.Nanoseconds(), code)
}

func (s *sampleWriter) drop(phase int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "d %d\n", phase)
}

func (s *sampleWriter) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.w.Flush()
}

func (s *sampleWriter) flushEvery(ctx context.Context, d time.Duration) { every(ctx, d, s.flush) }
