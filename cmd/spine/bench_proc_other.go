//go:build !linux

package main

import "os/exec"

// childProcAttr does nothing where the kernel cannot kill a child with its
// parent: the bench stops its children itself, and the lookup child also
// exits when its stdin closes.
func childProcAttr(*exec.Cmd) {}
