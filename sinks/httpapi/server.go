package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is the lookup API. It is safe for concurrent use; create it with
// New, then either mount Handler in a server of your own or call Run.
type Server struct {
	cfg        Config
	profiles   Profiles
	norm       Normalizer
	log        *slog.Logger
	audit      *slog.Logger // log.With("audit", true)
	gatherer   prometheus.Gatherer
	metrics    *metrics
	principals []*principal
	ready      atomic.Pointer[func() bool]
	closing    atomic.Bool // set once Run begins shutting down: /readyz fails
	mux        *http.ServeMux
	handler    http.Handler
	scopes     map[string]Scope // registered pattern -> scope ("" for none), for the OpenAPI test
	now        func() time.Time
}

// call is what a route's handler learns about its request beyond the
// http.Request, and what it leaves for the audit log.
type call struct {
	route     string // the mux pattern
	who       string // token name, once authenticated
	profileID string // the profile concerned, for the audit log
	attrs     []any  // more audit attributes; identifiers go in as canon.Identifier values, so they log through LogValue
}

// handlerFunc handles one route. It writes success responses itself and
// returns errors for the server to answer (see writeError).
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// New returns a server for cfg. p and n are required. log may be nil (logs
// are discarded); reg may be nil (metrics are not registered); gatherer may
// be nil (/metrics answers 501). Metrics are registered on reg once, so a
// registerer can serve only one Server.
func New(cfg Config, p Profiles, n Normalizer, log *slog.Logger, reg prometheus.Registerer, gatherer prometheus.Gatherer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if p == nil || n == nil {
		return nil, errors.New("httpapi: New needs a Profiles and a Normalizer")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		profiles: p,
		norm:     n,
		log:      log,
		audit:    log.With("audit", true),
		gatherer: gatherer,
		metrics:  m,
		mux:      http.NewServeMux(),
		now:      time.Now,
	}
	s.principals = newPrincipals(cfg, s.now())
	for _, t := range cfg.Tokens {
		if len(t.Secret) < 16 {
			log.Warn("api: token secret is short; use at least 16 random characters", "token", t.Name)
		}
	}
	if cfg.Ready != nil {
		s.SetReady(cfg.Ready)
	}
	s.routes()
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s, nil
}

// Handler returns the API's handler: every route, authentication, rate
// limiting and metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady sets the function /readyz consults. It may be called at any time,
// from any goroutine; f must be safe for concurrent use and fast.
func (s *Server) SetReady(f func() bool) {
	if f == nil {
		s.ready.Store(nil)
		return
	}
	s.ready.Store(&f)
}

func (s *Server) isReady() bool {
	f := s.ready.Load()
	return f != nil && !s.closing.Load() && (*f)()
}

// Run listens on Config.Addr and serves until ctx ends, then shuts down
// gracefully: it stops accepting, lets requests in flight finish for up to
// Config.ShutdownTimeout, and closes what is left. It returns nil after a
// shutdown caused by ctx.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("httpapi: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener of the caller's, which it closes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Request contexts deliberately do not derive from ctx: cancelling
		// ctx starts a graceful shutdown, which lets requests finish.
	}
	useTLS := s.cfg.TLSCert != ""
	if useTLS {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("httpapi: load TLS key pair: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	s.log.Info("api: listening", "addr", ln.Addr().String(), "tls", useTLS)

	select {
	case err := <-errc:
		return fmt.Errorf("httpapi: serve: %w", err)
	case <-ctx.Done():
	}
	s.closing.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var err error
	if serr := srv.Shutdown(sctx); serr != nil {
		err = fmt.Errorf("httpapi: shutdown: %w", serr)
		_ = srv.Close() // the deadline passed: drop what is left
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("httpapi: serve: %w", serr))
	}
	s.log.Info("api: stopped")
	return err
}

// routes registers every endpoint. The table is the API: the OpenAPI test
// checks schemas/openapi.yaml against s.scopes.
func (s *Server) routes() {
	s.scopes = map[string]Scope{}
	for _, rt := range []struct {
		pattern string
		scope   Scope  // "" for the unauthenticated operational endpoints
		action  string // audit action, "" when not audited
		h       handlerFunc
	}{
		{"GET /v1/profiles", ScopeRead, "", s.lookup},
		{"GET /v1/profiles/{id}", ScopeRead, "", s.profile},
		{"GET /v1/profiles/{id}/graph", ScopeRead, "", s.graph},
		{"GET /v1/profiles/{id}/export", ScopeAdmin, "export", s.export},
		{"POST /v1/profiles/{id}/erase", ScopeAdmin, "erase", s.erase},
		{"PUT /v1/profiles/{id}/consent", ScopeWrite, "consent", s.consent},
		{"POST /v1/links", ScopeAdmin, "link", s.link},
		{"DELETE /v1/links", ScopeAdmin, "unlink", s.unlink},
		{"GET /v1/quarantine", ScopeAdmin, "", s.quarantine},
		{"DELETE /v1/quarantine", ScopeAdmin, "release", s.release},
		{"GET /v1/accounts/{id}", ScopeRead, "", s.account},
		{"GET /v1/dashboard", ScopeRead, "", s.dashboard},
		{"GET /healthz", "", "", s.healthz},
		{"GET /readyz", "", "", s.readyz},
		{"GET /metrics", "", "", s.metricsHandler()},
	} {
		s.mux.Handle(rt.pattern, s.wrap(rt.pattern, rt.scope, rt.action, rt.h))
		s.scopes[rt.pattern] = rt.scope
	}
	s.pageRoutes() // the dashboard page: GET / and its assets (dashboard.go)
}

// serveHTTP is the outermost handler: it lets the mux route, and turns the
// mux's own plain-text 404 and 405 answers into JSON errors.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w}
	s.mux.ServeHTTP(rw, r)
	if !rw.routed {
		s.metrics.observe(routeUnmatched, rw.status(), time.Since(start))
	}
}

// wrap adds to h what every route shares: authentication, scope check, rate
// limit, request timeout, panic recovery, metrics and the audit log.
func (s *Server) wrap(pattern string, scope Scope, action string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw, ok := w.(*responseWriter)
		if !ok {
			rw = &responseWriter{ResponseWriter: w}
		}
		rw.routed = true
		c := &call{route: pattern}
		authed := false
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("api: handler panicked", "route", pattern, "token", c.who, "panic", fmt.Sprint(v))
				if rw.code == 0 {
					s.writeJSON(rw, http.StatusInternalServerError, errorBody{Error: "internal error"})
				}
			}
			s.metrics.observe(pattern, rw.status(), time.Since(start))
			if action != "" && authed {
				attrs := []any{"action", action, "token", c.who, "route", pattern, "status", rw.status()}
				if c.profileID != "" {
					attrs = append(attrs, "profile_id", c.profileID)
				}
				attrs = append(attrs, c.attrs...)
				s.audit.Info("api: audit", attrs...)
			}
		}()

		if scope != "" {
			// Profiles are personal data: no cache along the way may keep
			// any /v1 answer, errors included.
			rw.Header().Set("Cache-Control", "no-store")
			p, fail := authenticate(s.principals, r.Header.Get("Authorization"))
			if fail == nil && !p.scopes[scope] {
				c.who, fail = p.name, errScope(scope)
			}
			if fail != nil {
				rw.Header().Set("WWW-Authenticate", fail.header)
				s.writeJSON(rw, fail.status, errorBody{Error: fail.reason})
				// The header's content is never logged: it may be a secret.
				s.audit.Warn("api: auth failed", "action", "auth", "token", c.who, "route", pattern,
					"status", fail.status, "reason", fail.reason, "remote", r.RemoteAddr)
				return
			}
			c.who, authed = p.name, true
			if p.bucket != nil {
				if ok, after := p.bucket.take(s.now()); !ok {
					rw.Header().Set("Retry-After", strconv.Itoa(after))
					s.writeJSON(rw, http.StatusTooManyRequests, errorBody{Error: "rate limit exceeded"})
					return
				}
			}
		}
		if s.cfg.RequestTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		if err := h(rw, r, c); err != nil {
			s.writeError(rw, c, err)
		}
	}
}

func (s *Server) metricsHandler() handlerFunc {
	if s.gatherer == nil {
		return func(http.ResponseWriter, *http.Request, *call) error {
			return errStatus(statusNoCapability, "metrics are not configured")
		}
	}
	ph := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
	return func(w http.ResponseWriter, r *http.Request, _ *call) error {
		ph.ServeHTTP(w, r)
		return nil
	}
}

// responseWriter records the status for metrics and audit, and marks
// whether one of our routes handled the request: when none did, the mux
// answered by itself, and its plain-text error is replaced by JSON.
type responseWriter struct {
	http.ResponseWriter
	code    int
	routed  bool
	swallow bool // the mux's own body is being replaced
}

func (w *responseWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

func (w *responseWriter) WriteHeader(code int) {
	if w.code != 0 {
		return // superfluous; net/http would only log it
	}
	w.code = code
	if !w.routed && code >= 400 {
		msg := "no such endpoint"
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed" // the Allow header the mux set stays
		}
		writeRaw(w.ResponseWriter, code, []byte(`{"error":"`+msg+"\"}\n"))
		w.swallow = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
