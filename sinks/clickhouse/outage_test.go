package clickhouse_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spinecdp/spine/sinks"
	"github.com/spinecdp/spine/sinks/clickhouse"
)

// privateServer is a ClickHouse server of the test's own, started with
// deploy/clickhouse.sh in a fresh directory, so stopping it disturbs no
// other test.
type privateServer struct {
	t   *testing.T
	dir string
}

var nativeAddr = regexp.MustCompile(`SPINE_TEST_CLICKHOUSE=(\S+)`)

func startPrivateServer(t *testing.T) *privateServer {
	t.Helper()
	serverAddr(t) // integration tests are on
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil {
			skipOrFail(t, "starting a private ClickHouse server needs root or sudo")
		}
	}
	// Not t.TempDir: its parent is private to root, and the server runs as
	// the clickhouse user.
	dir, err := os.MkdirTemp("", "spine-ch-outage-")
	if err != nil {
		t.Fatal(err)
	}
	p := &privateServer{t: t, dir: dir}
	t.Cleanup(func() {
		p.run("stop")
		_ = os.RemoveAll(dir)
	})
	return p
}

func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// start starts (or restarts) the server and returns its native address;
// every start picks new free ports.
func (p *privateServer) start() string {
	p.t.Helper()
	out := p.run("start")
	m := nativeAddr.FindStringSubmatch(out)
	if m == nil {
		p.t.Fatalf("clickhouse.sh start printed no address: %s", out)
	}
	return m[1]
}

func (p *privateServer) stop() { p.t.Helper(); p.run("stop") }

// signal sends sig to the server this test started (by its pid file).
func (p *privateServer) signal(sig syscall.Signal) {
	p.t.Helper()
	b, err := os.ReadFile(p.dir + "/ch.pid")
	if err != nil {
		p.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		p.t.Fatalf("kill -%d %d: %v", sig, pid, err)
	}
}

func (p *privateServer) run(cmd string) string {
	p.t.Helper()
	out, err := exec.Command("bash", "../../deploy/clickhouse.sh", cmd, p.dir).CombinedOutput()
	if err != nil {
		p.t.Fatalf("clickhouse.sh %s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// TestOutageExactlyOnce streams change batches as sinks.Run does (retrying
// retryable errors, failing on any other) while the real server is first
// stopped mid-stream and restarted, then frozen with SIGSTOP for longer
// than the read timeout, so inserts end in the unknown state (the server
// may apply them after the client gave up). Every Write error must be
// retryable, and afterwards every row is there exactly once under FINAL,
// and the roll-ups equal the answer.
func TestOutageExactlyOnce(t *testing.T) {
	srv := startPrivateServer(t)
	px := newSwitchProxy(t, srv.start())

	cfg := clickhouse.DefaultConfig(px.addr())
	cfg.Database = "spine_outage"
	cfg.Dialect = testDialect()
	cfg.DialTimeout = time.Second
	cfg.ReadTimeout = time.Second
	cfg.SnapshotInterval, cfg.RollupInterval = 0, 0
	s, err := clickhouse.Open(t.Context(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}

	const batches, size = 40, 500
	var written atomic.Int64
	var mu sync.Mutex
	var retried, fatal []error
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		for b := range batches {
			batch := stream(b*size, (b+1)*size)
			for {
				err := s.Write(ctx, batch)
				if err == nil {
					break
				}
				mu.Lock()
				if !sinks.IsRetryable(err) || ctx.Err() != nil {
					fatal = append(fatal, err)
					mu.Unlock()
					return
				}
				retried = append(retried, err)
				mu.Unlock()
				time.Sleep(100 * time.Millisecond) // sinks.Run backs off likewise
			}
			written.Add(1)
		}
	}()
	waitFor(t, func() bool { return written.Load() >= 5 })

	// A real stop: the server shuts down under the writer, then comes back
	// on new ports, which the proxy follows.
	srv.stop()
	time.Sleep(time.Second)
	px.target(srv.start())
	waitFor(t, func() bool { return written.Load() >= 20 })

	// A freeze: the writer's inserts time out after ReadTimeout while the
	// server holds them; it resumes and may apply them, and the writer's
	// retry sends them again.
	srv.signal(syscall.SIGSTOP)
	time.Sleep(2500 * time.Millisecond)
	srv.signal(syscall.SIGCONT)
	<-done

	if len(fatal) > 0 {
		t.Fatalf("Write failed with a non-retryable error: %v", errors.Join(fatal...))
	}
	if len(retried) == 0 {
		t.Fatal("no Write failed during the outages; the test proved nothing")
	}
	t.Logf("%d retryable Write errors, e.g. %v", len(retried), retried[0])

	conn := query(t, px.addr(), cfg.Database)
	want := streamCounts(0, batches*size)
	for _, c := range []struct {
		q    string
		want uint64
	}{
		{"SELECT count() FROM events FINAL", want.events},
		{"SELECT count() FROM events_daily FINAL", want.events},
		{"SELECT countIf(kind = 'order') FROM events FINAL", want.orders},
		{"SELECT count() FROM profiles FINAL", want.profiles},
		{"SELECT count() FROM identity_map FINAL", want.mappings},
		{"SELECT sum(events) FROM rollup_channel_daily FINAL", want.events},
		{"SELECT sum(orders) FROM rollup_channel_daily FINAL", want.orders},
		{"SELECT toUInt64(sum(revenue_micros[1])) FROM rollup_channel_daily FINAL WHERE currencies = ['EUR']", want.orders * 1_000_000},
		{"SELECT profiles FROM rollup_identity_daily FINAL", want.profiles},
	} {
		if got := count(t, conn, c.q); got != c.want {
			t.Errorf("%s = %d, want %d", c.q, got, c.want)
		}
	}
	t.Logf("physical rows in events: %d for %d events (duplicates from retries collapse under FINAL)",
		count(t, conn, "SELECT count() FROM events"), want.events)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the writer")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// switchProxy forwards TCP to a target that can change: a restarted server
// comes back on new ports, while the sink keeps its configured address.
// Changing the target cuts the open connections.
type switchProxy struct {
	l     net.Listener
	to    atomic.Value // string
	mu    sync.Mutex
	conns []net.Conn
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{l: l}
	p.to.Store(target)
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.DialTimeout("tcp", p.to.Load().(string), time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *switchProxy) addr() string { return p.l.Addr().String() }

func (p *switchProxy) target(addr string) { p.to.Store(addr); p.cut() }

// close stops the proxy: it refuses new connections and cuts every open
// one, a network outage on demand.
func (p *switchProxy) close() { p.l.Close(); p.cut() }

func (p *switchProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
