package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
	"time"
)

// childEnv, set to 1 in a process's environment, makes the test binary
// behave as the spine command: tests re-exec os.Args[0] with
// "-- COMMAND FLAGS..." to run a real spine process (one they can SIGKILL)
// without building the binary first.
const childEnv = "SPINE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain(os.Args))
	}
	os.Exit(m.Run())
}

// childMain is main for a re-executed test binary: the arguments after the
// first "--" are spine's. It returns the exit status main would have.
func childMain(args []string) int {
	i := slices.Index(args, "--")
	if i < 0 {
		fmt.Fprintf(os.Stderr, "spine test child: %s=1 but no \"--\" before the spine arguments\n", childEnv)
		return 2
	}
	// A child outlives a test binary that dies without running its
	// cleanups (a timeout panic, a kill): then the child is reparented, and
	// leaves too, rather than run on against a broker that is gone.
	ppid := os.Getppid()
	go func() {
		for range time.Tick(250 * time.Millisecond) {
			if os.Getppid() != ppid {
				fmt.Fprintln(os.Stderr, "spine test child: the test process is gone; exiting")
				os.Exit(3)
			}
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, args[i+1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "spine:", err)
		return 1
	}
	return 0
}
