package clickhouse_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spinecdp/spine/schemas/canon"
)

// TestRestrictedRowsStayOut checks the analytics consent policy: a person
// whose consent keeps them out gets no new event rows, and their profile
// row keeps counters and consent but no identifiers or traits.
func TestRestrictedRowsStayOut(t *testing.T) {
	s, conn := openSink(t)
	carol := id(canon.Email, "carol@shop.io")
	ev := event(canon.Web, "r-1", "p-carol", canon.KindPage, carol)
	ev.Restricted = true
	p := profile("p-carol", 7, 2, carol)
	p.Restricted = true
	p.Profile.Traits = map[string]any{"first_name": "Carol"}
	p.Profile.Consent = map[string]canon.ConsentState{"analytics": {Value: false, Source: "ciam"}}
	// As from the engine: the change carries the whole profile's JSON.
	raw, err := json.Marshal(p.Profile)
	if err != nil {
		t.Fatal(err)
	}
	p.Raw = raw
	if err := s.Write(t.Context(), changes(100, ev, p)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count() FROM events FINAL WHERE message_id = 'r-1'"); n != 0 {
		t.Errorf("%d event rows for a restricted person, want 0", n)
	}
	var email, first, js string
	var orders int64
	err = conn.QueryRow(t.Context(), "SELECT email, first_name, order_count, profile FROM profiles FINAL WHERE profile_id = 'p-carol'").Scan(&email, &first, &orders, &js)
	if err != nil {
		t.Fatal(err)
	}
	if email != "" || first != "" || orders != 2 {
		t.Errorf("restricted profile row = email %q, first_name %q, orders %d; want no PII and the counters", email, first, orders)
	}
	for _, leak := range []string{"carol@shop.io", "Carol"} {
		if strings.Contains(js, leak) {
			t.Errorf("restricted profile JSON holds %q", leak)
		}
	}
}

// TestAccountChanges writes two versions of a B2B account; FINAL keeps the
// newer one.
func TestAccountChanges(t *testing.T) {
	s, conn := openSink(t)
	v1 := canon.Change{Kind: canon.ChangeAccount, Account: &canon.Account{ID: "acct-9", Traits: map[string]any{"name": "Initech"}, Members: []string{"p-1"}, Version: 200}}
	v2 := canon.Change{Kind: canon.ChangeAccount, Account: &canon.Account{ID: "acct-9", Traits: map[string]any{"name": "Initech"}, Members: []string{"p-1", "p-2"}, Version: 201}}
	if err := s.Write(t.Context(), changes(200, v1, v2)); err != nil {
		t.Fatal(err)
	}
	var name string
	var members uint32
	if err := conn.QueryRow(t.Context(), "SELECT name, member_count FROM accounts FINAL WHERE account_id = 'acct-9'").Scan(&name, &members); err != nil {
		t.Fatal(err)
	}
	if name != "Initech" || members != 2 {
		t.Errorf("account = %q with %d members, want Initech with 2", name, members)
	}
}
