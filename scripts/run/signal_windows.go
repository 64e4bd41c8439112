//go:build windows

package main

import "os/exec"

// detach does nothing on Windows: the children share the console, and
// Ctrl+C reaches each of them directly.
func detach(*exec.Cmd) {}

// interrupt kills the child: Windows has no interrupt to send to another
// process. After Ctrl+C the children have already been told by the console.
func interrupt(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

// forward does nothing on Windows: the console delivered the Ctrl+C to the
// child already.
func forward(*exec.Cmd) {}
