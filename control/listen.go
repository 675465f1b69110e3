package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
)

// Listen listens on the Unix socket path with file mode mode. A file left
// at path by a previous run is removed only if it is a socket (Lstat, so a
// symlink is not followed): the caller must hold the daemon's single
// instance lock (the store's flock), so no live daemon can own it. Any
// other kind of file is refused with an error and left alone.
func Listen(path string, mode os.FileMode) (net.Listener, error) {
	fi, err := os.Lstat(path)
	switch {
	case err == nil:
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("control socket %s: refusing to replace a file that is not a socket (%s)", path, fi.Mode().Type())
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket %s: chmod %#o: %w", path, mode, err)
	}
	return l, nil
}
