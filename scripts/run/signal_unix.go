//go:build !windows

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// detach puts the child in its own process group, so that Ctrl+C in the
// terminal reaches only run, which passes it on: once to each child, in
// order.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// interrupt sends the child an interrupt, as Ctrl+C would.
func interrupt(cmd *exec.Cmd) { _ = cmd.Process.Signal(os.Interrupt) }

// forward passes a Ctrl+C or SIGTERM that run received on to the child.
func forward(cmd *exec.Cmd) { _ = cmd.Process.Signal(os.Interrupt) }
