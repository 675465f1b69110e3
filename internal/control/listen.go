package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// probeTimeout bounds the connect that tells a live socket from a dead one.
const probeTimeout = 2 * time.Second

// Listen listens on the Unix socket path with file mode mode.
//
// A file already at path is never removed while something answers on it:
// Listen first connects to it, and when the connect succeeds (another
// calld with another state file, or any other process) it refuses with an
// error naming the path. Only a dead socket (the connect is refused) is
// replaced. Any other kind of file is refused and left alone (Lstat, so a
// symlink is not followed).
//
// Closing the listener removes the socket file only if it is still the
// one Listen created (same device and inode): a socket another process
// put there meanwhile is left alone.
func Listen(path string, mode os.FileMode) (net.Listener, error) {
	fi, err := os.Lstat(path)
	switch {
	case err == nil:
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("control socket %s: refusing to replace a file that is not a socket but %s; remove it or set another [control] socket", path, fileKind(fi.Mode()))
		}
		if err := probe(path); err != nil {
			return nil, err
		}
		// Remove the dead file probed, not one another starting daemon
		// put there meanwhile.
		if now, err := os.Lstat(path); err == nil && !os.SameFile(fi, now) {
			return nil, fmt.Errorf("control socket %s: replaced by another process while calld checked it; is another calld starting?", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		if dir := filepath.Dir(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("control socket %s: its directory %s does not exist (create it, or set another [control] socket): %w", path, dir, err)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ul.Close()
		_ = os.Remove(path)
		return nil, err
	}
	if err := os.Chmod(path, mode); err != nil {
		return fail(fmt.Errorf("control socket %s: chmod %#o: %w", path, mode, err))
	}
	created, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("control socket %s: %w", path, err))
	}
	return &ownedListener{UnixListener: ul, path: path, created: created}, nil
}

// fileKind names the type of a file that is not a socket.
func fileKind(m fs.FileMode) string {
	switch t := m.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeDevice != 0:
		return "a device"
	default:
		return fmt.Sprintf("a file of type %s", t)
	}
}

// probe connects to the socket file at path: nil when it is dead (nobody
// listens: the connect is refused, or the file vanished), else an error
// saying why it must not be replaced.
func probe(path string) error {
	c, err := net.DialTimeout("unix", path, probeTimeout)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("control socket %s: another process is listening on it (another calld with another state file?); stop it, or set another [control] socket", path)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, syscall.EAGAIN):
		return fmt.Errorf("control socket %s: another process is listening on it (its backlog is full); stop it, or set another [control] socket", path)
	default:
		return fmt.Errorf("control socket %s: cannot tell whether another process listens on it, leaving it alone: %w", path, err)
	}
}

// ownedListener is a listener on a socket file Listen created; Close
// unlinks the file only while it is still that file.
type ownedListener struct {
	*net.UnixListener
	path    string
	created os.FileInfo
	once    sync.Once
}

func (l *ownedListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.created) {
			_ = os.Remove(l.path)
		}
	})
	return err
}
