package pglocal

import "syscall"

// sysProcAttr puts a child in its own process group, so a terminal's Ctrl-C
// reaches only deskbridge, which then stops the child in order, and gives it a
// parent-death signal, so it does not outlive a deskbridge killed with
// SIGKILL. Combining it with a credential is safe: the kernel clears the
// parent-death signal when a process changes user, but Go's child code
// switches user first and arms the signal afterwards (syscall/exec_linux.go).
func sysProcAttr(cred *syscall.Credential, deathSig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig, Credential: cred}
}
