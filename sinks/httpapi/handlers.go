package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spinecdp/spine/schemas/canon"
)

// Quarantine listing bounds: an admin page, not a bulk export.
const (
	defaultQuarantineLimit = 100
	maxQuarantineLimit     = 1000
)

// GET /v1/profiles?type=&value=
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := s.queryIdentifier(r)
	if err != nil {
		return err
	}
	c.attrs = append(c.attrs, "identifier", id)
	return s.answerProfile(w,
		func(raw RawProfiles) ([]byte, error) { return raw.LookupJSON(r.Context(), id) },
		func() (canon.Profile, error) { return s.profiles.Lookup(r.Context(), id) })
}

// answerProfile answers with a profile: its stored JSON when the engine
// keeps it (RawProfiles), else the profile, encoded.
func (s *Server) answerProfile(w http.ResponseWriter, stored func(RawProfiles) ([]byte, error), typed func() (canon.Profile, error)) error {
	if raw, ok := s.profiles.(RawProfiles); ok {
		b, err := stored(raw)
		if err != nil {
			return err
		}
		writeEncoded(w, b)
		return nil
	}
	p, err := typed()
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, p)
	return nil
}

// queryIdentifier reads and normalizes ?type=&value=. A value that cannot be
// normalized can never be held by a profile (DESIGN §2 drops it at ingest),
// so it is answered like an unknown one: 404.
func (s *Server) queryIdentifier(r *http.Request) (canon.Identifier, error) {
	q := r.URL.Query()
	typ, val := q.Get("type"), q.Get("value")
	if typ == "" || val == "" {
		return canon.Identifier{}, errStatus(http.StatusBadRequest, "query parameters type and value are required")
	}
	t := canon.IDType(typ)
	if !t.Valid() {
		// The type is not echoed: a client that swapped the parameters
		// would see the value in the message.
		return canon.Identifier{}, errStatus(http.StatusBadRequest, "unknown identifier type")
	}
	if len(val) > canon.MaxIDLen || !utf8.ValidString(val) {
		return canon.Identifier{}, errNotFound
	}
	id, err := s.norm.Normalize(t, val)
	if err != nil {
		return canon.Identifier{}, errNotFound
	}
	return id, nil
}

// pathID returns the {id} path value. Ids are made by the engine; one that
// could never have been made is simply not found.
func pathID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if id == "" || len(id) > canon.MaxIDLen || !utf8.ValidString(id) {
		return "", errNotFound
	}
	return id, nil
}

// GET /v1/profiles/{id}
func (s *Server) profile(w http.ResponseWriter, r *http.Request, _ *call) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	return s.answerProfile(w,
		func(raw RawProfiles) ([]byte, error) { return raw.ProfileJSON(r.Context(), id) },
		func() (canon.Profile, error) { return s.profiles.Profile(r.Context(), id) })
}

// GET /v1/profiles/{id}/graph
func (s *Server) graph(w http.ResponseWriter, r *http.Request, _ *call) error {
	g, ok := s.profiles.(Grapher)
	if !ok {
		return errNoCapability
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	doc, err := g.Graph(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, doc)
	return nil
}

// GET /v1/profiles/{id}/export
func (s *Server) export(w http.ResponseWriter, r *http.Request, c *call) error {
	e, ok := s.profiles.(Exporter)
	if !ok {
		return errNoCapability
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	c.profileID = id
	doc, err := e.Export(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, doc)
	return nil
}

// POST /v1/profiles/{id}/erase
func (s *Server) erase(w http.ResponseWriter, r *http.Request, c *call) error {
	cmdr, err := s.commander()
	if err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	c.profileID = id
	cmd := canon.Command{Kind: canon.CmdErase, ProfileID: id, Actor: c.who, Time: s.now().UTC()}
	res, err := cmdr.Do(r.Context(), cmd)
	if err != nil {
		return err
	}
	rc := res.Receipt
	if rc == nil {
		// The erasure happened; answering 500 would make the client retry
		// into a 404. Say what is known and flag the engine's omission.
		s.log.Warn("api: engine returned no erasure receipt", "profile_id", id)
		rc = &canon.Receipt{ProfileIDs: []string{id}, Sinks: []string{}, At: cmd.Time}
	}
	s.writeJSON(w, http.StatusOK, rc)
	return nil
}

// consentView is the answer to a consent update: the consent state only,
// since a write-scoped token (a consent platform) may not read profiles.
type consentView struct {
	ProfileID string                        `json:"profile_id"`
	Consent   map[string]canon.ConsentState `json:"consent"`
	Version   uint64                        `json:"version"`
}

// PUT /v1/profiles/{id}/consent
func (s *Server) consent(w http.ResponseWriter, r *http.Request, c *call) error {
	cmdr, err := s.commander()
	if err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	c.profileID = id
	var body map[string]json.RawMessage
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, &body); err != nil {
		return err
	}
	consent, err := parseConsent(body)
	if err != nil {
		return err
	}
	for _, p := range canon.Purposes {
		if v, ok := consent[p]; ok {
			c.attrs = append(c.attrs, p, v)
		}
	}
	res, err := cmdr.Do(r.Context(), canon.Command{
		Kind: canon.CmdConsent, ProfileID: id, Consent: consent, Actor: c.who, Time: s.now().UTC(),
	})
	if err != nil {
		return err
	}
	if res.Profile == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	cs := res.Profile.Consent
	if cs == nil {
		cs = map[string]canon.ConsentState{}
	}
	s.writeJSON(w, http.StatusOK, consentView{ProfileID: res.Profile.ID, Consent: cs, Version: res.Profile.Version})
	return nil
}

// parseConsent checks a consent body: only the purposes of canon.Purposes,
// each a JSON boolean, at least one.
func parseConsent(body map[string]json.RawMessage) (map[string]bool, error) {
	if body == nil {
		return nil, errStatus(http.StatusBadRequest, "request body must be a JSON object")
	}
	if len(body) == 0 {
		return nil, errStatus(http.StatusBadRequest, "at least one consent purpose is required")
	}
	out := make(map[string]bool, len(body))
	for k, raw := range body {
		if !slices.Contains(canon.Purposes, k) {
			return nil, errStatus(http.StatusBadRequest,
				"unknown consent purpose; want "+strings.Join(canon.Purposes, ", "))
		}
		v, ok := isJSONBool(raw)
		if !ok {
			return nil, errStatus(http.StatusBadRequest, "consent purpose "+k+" must be true or false")
		}
		out[k] = v
	}
	return out, nil
}

// idBody is an identifier as a request body carries it, before
// normalization.
type idBody struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type linkBody struct {
	A *idBody `json:"a"`
	B *idBody `json:"b"`
}

// POST /v1/links: link a pair (confirming a pending candidate).
func (s *Server) link(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.pairCommand(w, r, c, canon.CmdLink)
}

// DELETE /v1/links: remove a pair's link, which may split a profile.
func (s *Server) unlink(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.pairCommand(w, r, c, canon.CmdUnlink)
}

func (s *Server) pairCommand(w http.ResponseWriter, r *http.Request, c *call, kind canon.CommandKind) error {
	cmdr, err := s.commander()
	if err != nil {
		return err
	}
	var body linkBody
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, &body); err != nil {
		return err
	}
	a, err := s.bodyIdentifier("a", body.A)
	if err != nil {
		return err
	}
	b, err := s.bodyIdentifier("b", body.B)
	if err != nil {
		return err
	}
	if a == b {
		return errStatus(http.StatusBadRequest, "a and b are the same identifier")
	}
	c.attrs = append(c.attrs, "identifier_a", a, "identifier_b", b)
	res, err := cmdr.Do(r.Context(), canon.Command{
		Kind: kind, Pair: &canon.Pair{A: a, B: b}, Actor: c.who, Time: s.now().UTC(),
	})
	if err != nil {
		return err
	}
	if res.Profile != nil {
		c.profileID = res.Profile.ID
	}
	s.writeJSON(w, http.StatusOK, res)
	return nil
}

// bodyIdentifier validates and normalizes one side of a link body. Unlike a
// lookup, an identifier that cannot be normalized is the client's mistake
// here: 400, naming the side and never the value.
func (s *Server) bodyIdentifier(side string, b *idBody) (canon.Identifier, error) {
	switch {
	case b == nil:
		return canon.Identifier{}, errStatus(http.StatusBadRequest, side+" is required")
	case b.Type == "" || b.Value == "":
		return canon.Identifier{}, errStatus(http.StatusBadRequest, side+".type and "+side+".value are required")
	case !canon.IDType(b.Type).Valid():
		return canon.Identifier{}, errStatus(http.StatusBadRequest, side+".type: unknown identifier type")
	case len(b.Value) > canon.MaxIDLen || !utf8.ValidString(b.Value):
		return canon.Identifier{}, errStatus(http.StatusBadRequest, side+".value: must be 1..512 bytes of UTF-8")
	}
	id, err := s.norm.Normalize(canon.IDType(b.Type), b.Value)
	if err != nil {
		return canon.Identifier{}, errStatus(http.StatusBadRequest, side+".value: not a usable "+b.Type+" (blocked or invalid)")
	}
	return id, nil
}

type quarantineList struct {
	Quarantine []canon.LogRecord `json:"quarantine"`
}

// GET /v1/quarantine?limit=
func (s *Server) quarantine(w http.ResponseWriter, r *http.Request, _ *call) error {
	ql, ok := s.profiles.(QuarantineLister)
	if !ok {
		return errNoCapability
	}
	limit := defaultQuarantineLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxQuarantineLimit {
			return errStatus(http.StatusBadRequest, "limit must be an integer in 1..1000")
		}
		limit = n
	}
	recs, err := ql.Quarantined(r.Context(), limit)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []canon.LogRecord{}
	}
	s.writeJSON(w, http.StatusOK, quarantineList{Quarantine: recs})
	return nil
}

// DELETE /v1/quarantine?type=&value=: release a quarantined value.
func (s *Server) release(w http.ResponseWriter, r *http.Request, c *call) error {
	cmdr, err := s.commander()
	if err != nil {
		return err
	}
	id, err := s.queryIdentifier(r)
	if err != nil {
		return err
	}
	c.attrs = append(c.attrs, "identifier", id)
	res, err := cmdr.Do(r.Context(), canon.Command{
		Kind: canon.CmdRelease, Identifier: &id, Actor: c.who, Time: s.now().UTC(),
	})
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, res)
	return nil
}

// GET /v1/accounts/{id}
func (s *Server) account(w http.ResponseWriter, r *http.Request, _ *call) error {
	a, ok := s.profiles.(Accounts)
	if !ok {
		return errNoCapability
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	doc, err := a.Account(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, doc)
	return nil
}

type statusBody struct {
	Status string `json:"status"`
}

// GET /healthz: the process is up and serving HTTP.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ *call) error {
	s.writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
	return nil
}

// GET /readyz: 200 only once the process says it is ready (DESIGN §6).
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request, _ *call) error {
	if !s.isReady() {
		return errStatus(http.StatusServiceUnavailable, "not ready")
	}
	s.writeJSON(w, http.StatusOK, statusBody{Status: "ready"})
	return nil
}

// commander returns the server's Profiles as a Commander, or the error
// that answers 501. Command handlers ask first, before they read a body
// or note its identifiers for the audit log.
func (s *Server) commander() (Commander, error) {
	cmd, ok := s.profiles.(Commander)
	if !ok {
		return nil, errNoCapability
	}
	return cmd, nil
}
