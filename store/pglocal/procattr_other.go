//go:build unix && !linux

package pglocal

import "syscall"

// sysProcAttr puts a child in its own process group, so a terminal's Ctrl-C
// reaches only deskbridge, which then stops the child in order. This system
// has no parent-death signal, so deathSig is ignored and a deskbridge killed
// with SIGKILL leaves its postgres running (see the package documentation).
func sysProcAttr(cred *syscall.Credential, _ syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}
