package main

import (
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/spinecdp/spine/schemas/canon"
)

// TestBlockedValuesFromFlags checks that configured junk is added to the
// built-in list, through the same flag parsing `spine run` uses.
func TestBlockedValuesFromFlags(t *testing.T) {
	fs, o := runFlags("run")
	args := []string{"--blocked-values", "info@shop.com, CASHIER-0", "--blocked-patterns", "^store-[0-9]+$", "--blocked-email-domains", "*.corp", "--default-region", "GB"}
	if err := fs.parse(args, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	n, err := normalizer(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		t       canon.IDType
		raw     string
		blocked bool
	}{
		{canon.Email, "Info@Shop.com", true},
		{canon.LoyaltyID, "cashier-0", true},
		{canon.CardFP, "store-17", true},
		{canon.Email, "ann@mail.it.corp", true},
		{canon.Email, "null", true}, // built-in junk is still blocked
		{canon.Email, "ann@shop.com", false},
		{canon.LoyaltyID, "store-x", false},
	} {
		_, err := n.Normalize(c.t, c.raw)
		if (err != nil) != c.blocked {
			t.Errorf("Normalize(%s, %q) error = %v, want blocked %v", c.t, c.raw, err, c.blocked)
		}
	}
	// The region reaches phone parsing: a UK national number.
	if id, err := n.Normalize(canon.Phone, "020 7946 0958"); err != nil || id.Value != "+442079460958" {
		t.Errorf("Normalize(phone) = %v, %v; want +442079460958", id, err)
	}
}

// TestSetProcs checks the scheduler-thread choice: an explicit --procs
// wins, a GOMAXPROCS variable is left alone, and otherwise the CPUs are
// raised to minProcs.
func TestSetProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		n       int
		fromEnv bool
		start   int
		want    int
	}{
		{n: 3, start: 2, want: 3},
		{n: 3, fromEnv: true, start: 2, want: 3},
		{fromEnv: true, start: 2, want: 2},
		{start: 2, want: minProcs},
		{start: minProcs + 4, want: minProcs + 4},
	} {
		runtime.GOMAXPROCS(c.start)
		ret := setProcs(c.n, c.fromEnv, minProcs, log)
		if got := runtime.GOMAXPROCS(0); got != c.want || ret != got {
			t.Errorf("setProcs(%d, fromEnv %v) from %d: GOMAXPROCS %d, want %d", c.n, c.fromEnv, c.start, got, c.want)
		}
	}
}

func TestRunRefusesEmptyBudgets(t *testing.T) {
	for _, flag := range []string{"--cache-mb", "--key-filter-mb"} {
		err := cmdRun(t.Context(), []string{"--tokens", "t:read", "--data", t.TempDir(), flag, "0"}, func(string) string { return "" }, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "must be at least 1") {
			t.Errorf("%s 0: %v, want a refusal", flag, err)
		}
	}
}
