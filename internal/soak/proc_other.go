//go:build !linux

package main

import "syscall"

// sysProcAttr: the soak samples /proc and needs Linux; elsewhere it stops
// at its first sample.
func sysProcAttr() *syscall.SysProcAttr { return nil }
