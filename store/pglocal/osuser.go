package pglocal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// ErrDataDirUnreachable means the OS user postgres runs as cannot reach
// DataDir, typically because it lies under root's home (mode 0700).
var ErrDataDirUnreachable = errors.New("data directory not reachable by the postgres OS user")

// runAs is the OS account initdb and postgres run as when this process is
// root. A nil *runAs means "run as ourselves", and its methods are no-ops.
type runAs struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32 // supplementary groups, so permission checks match the kernel's
}

// lookupRunAs returns nil when this process is not root, since postgres then
// runs as the current user and nothing needs switching or chowning.
func lookupRunAs(name string) (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("looking up OS user %q to run postgres as (postgres refuses to run as root): %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing uid of %q: %w", name, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing gid of %q: %w", name, err)
	}
	r := &runAs{name: name, uid: uint32(uid), gid: uint32(gid)}
	if uid == 0 {
		return nil, fmt.Errorf("OS user %q is root, and postgres refuses to run as root", name)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("listing groups of %q: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			r.groups = append(r.groups, uint32(n))
		}
	}
	return r, nil
}

// credential is what SysProcAttr needs to start a child as this user.
func (r *runAs) credential() *syscall.Credential {
	if r == nil {
		return nil
	}
	return &syscall.Credential{Uid: r.uid, Gid: r.gid, Groups: r.groups}
}

// chown hands a file or directory we created as root to the user, so the
// server can write it and so DataDir has one consistent owner.
func (r *runAs) chown(path string) error {
	if r == nil {
		return nil
	}
	if err := os.Lchown(path, int(r.uid), int(r.gid)); err != nil {
		return fmt.Errorf("changing owner of %s to %s: %w", path, r.name, err)
	}
	return nil
}

// chownTree makes the user own everything under dir, but only when dir's top
// is owned by someone else: postgres refuses a data directory it does not own
// (for example one created by an earlier non-root run), and walking a large,
// correctly owned cluster on every start would be wasted time.
func (r *runAs) chownTree(dir string) error {
	if r == nil {
		return nil
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("checking owner of %s: %w", dir, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == r.uid && st.Gid == r.gid {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return r.chown(path)
	})
}

// checkTraversable fails with ErrDataDirUnreachable when some parent of dir
// lacks search permission for the user. It mirrors the kernel's check on the
// mode bits (owner class, then group, then other; ACLs are not consulted)
// instead of fixing permissions, because those directories are not ours.
func (r *runAs) checkTraversable(dir string) error {
	if r == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("checking permissions of %s: %w", p, err)
		}
		if !r.canSearch(fi) {
			return fmt.Errorf("%w: user %q cannot enter %s (mode %v), a parent of %s; "+
				"set DESKBRIDGE_DATA_DIR to a directory outside it, for example /var/lib/deskbridge",
				ErrDataDirUnreachable, r.name, p, fi.Mode().Perm(), dir)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (r *runAs) canSearch(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true // cannot tell; let postgres report the problem
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == r.uid:
		return perm&0o100 != 0
	case st.Gid == r.gid || slices.Contains(r.groups, st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
