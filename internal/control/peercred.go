package control

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Cred is a connection's peer credentials.
type Cred struct {
	PID int
	UID int
	GID int
}

type credKey struct{}

// CredFromContext returns the peer credentials the server attached to a
// request's context, if any.
func CredFromContext(ctx context.Context) (Cred, bool) {
	c, ok := ctx.Value(credKey{}).(Cred)
	return c, ok
}

// WithCred returns ctx carrying c as the peer credentials (for servers
// that obtain credentials in another way, and for tests).
func WithCred(ctx context.Context, c Cred) context.Context {
	return context.WithValue(ctx, credKey{}, c)
}

// PeerCred reads SO_PEERCRED of a Unix socket connection.
func PeerCred(c net.Conn) (Cred, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Cred{}, fmt.Errorf("peer credentials: %T is not a socket connection", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		uc   *unix.Ucred
		uerr error
	)
	if err := raw.Control(func(fd uintptr) {
		uc, uerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	if uerr != nil {
		return Cred{}, fmt.Errorf("peer credentials: getsockopt SO_PEERCRED: %w", uerr)
	}
	return Cred{PID: int(uc.Pid), UID: int(uc.Uid), GID: int(uc.Gid)}, nil
}
