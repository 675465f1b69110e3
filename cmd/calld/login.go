package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/calld/calld"
)

// maxLoginFailures bounds how many rejected answers (a wrong code or
// password, a Telegram error) login tolerates before it gives up.
const maxLoginFailures = 5

// runLogin is `calld login`: an interactive loop over POST /v1/login. It
// asks the daemon what it needs (phone, code, 2FA password), prompts on
// stderr, reads the answers from stdin (the password without echo when
// stdin is a terminal), and ends when the daemon says "authorized". A
// rejected answer is reported and asked again, up to maxLoginFailures.
func runLogin(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("login", commonFlags, sio)
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	cl, code := c.client()
	if cl == nil {
		return code
	}
	defer cl.Close()
	in := bufio.NewReader(sio.stdin)
	step := calld.LoginStep{} // first ask where the login stands
	failures := 0
	for {
		data, err := cl.Raw(ctx, http.MethodPost, "/v1/login", step)
		if err != nil {
			var ce *calld.Error
			if !errors.As(err, &ce) || !retryLogin(ce.Code) || failures >= maxLoginFailures {
				return c.fail(err)
			}
			failures++
			fmt.Fprintf(sio.stderr, "calld login: %s: %s\n", ce.Code, ce.Message)
			step = calld.LoginStep{}
			continue
		}
		var st calld.LoginState
		if err := decodeInto(data, &st); err != nil {
			return c.fail(err)
		}
		var answer string
		switch st.State {
		case calld.LoginAuthorized:
			if c.json {
				printRaw(sio.stdout, data)
			} else {
				fmt.Fprintf(sio.stdout, "Logged in as user %d.\n", st.SelfID)
			}
			return 0
		case calld.LoginPhoneNeeded:
			answer, err = prompt(ctx, sio, in, "Phone number (international format, e.g. +15551234567): ", false)
			step = calld.LoginStep{Phone: answer}
		case calld.LoginCodeSent:
			where := ""
			if st.Phone != "" {
				where = " to " + st.Phone
			}
			if st.CodeVia != "" {
				where += " via " + st.CodeVia
			}
			answer, err = prompt(ctx, sio, in, "Code sent"+where+": ", false)
			step = calld.LoginStep{Code: answer}
		case calld.LoginPasswordNeeded:
			hint := ""
			if st.PasswordHint != "" {
				hint = " (hint: " + st.PasswordHint + ")"
			}
			answer, err = prompt(ctx, sio, in, "Two-step verification password"+hint+": ", true)
			step = calld.LoginStep{Password: answer}
		default:
			return c.fail(fmt.Errorf("the daemon answered an unknown login state %q", st.State))
		}
		if err != nil {
			return c.fail(err)
		}
	}
}

// retryLogin reports whether an error answer is worth asking again:
// wrong input and Telegram's own errors are; a daemon that is not
// connected, a forbidden uid or an internal failure are not.
func retryLogin(code string) bool {
	switch code {
	case calld.EFORBIDDEN, calld.EUNAVAILABLE, calld.EINTERNAL, calld.ENOTFOUND, calld.EUNAUTHORIZED:
		return false
	}
	return true
}

// prompt asks until it gets a non-empty line. With secret and a terminal
// on stdin, echo is off while the line is typed. It gives up on EOF and
// when ctx ends (Ctrl-C), restoring the terminal.
func prompt(ctx context.Context, sio stdio, in *bufio.Reader, question string, secret bool) (string, error) {
	for {
		fmt.Fprint(sio.stderr, question)
		restore := func() {}
		if secret {
			if r, ok := echoOff(sio.stdin); ok {
				restore = func() {
					r()
					fmt.Fprintln(sio.stderr) // the newline the user typed was not echoed
				}
			}
		}
		line, err := readLine(ctx, in)
		restore()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", errors.New("login aborted: end of input")
			}
			return "", fmt.Errorf("login aborted: %w", err)
		}
		if line = strings.TrimSpace(line); line != "" {
			return line, nil
		}
	}
}

// readLine reads one line; a final line without newline counts. When ctx
// ends first, the read goes on until the input gives a line or ends: a
// read of a terminal cannot be interrupted. Its owner is the process,
// which exits right after (calld login gives up with ctx); it is the one
// goroutine of calld that nothing waits for.
func readLine(ctx context.Context, in *bufio.Reader) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := in.ReadString('\n')
		if err == io.EOF && line != "" {
			err = nil
		}
		ch <- result{line, err}
	}()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-ch:
		return r.line, r.err
	}
}

// echoOff turns terminal echo off on r if it is a terminal, and returns
// the function that restores it. (golang.org/x/term is not in the module
// graph; golang.org/x/sys/unix is.)
func echoOff(r io.Reader) (restore func(), ok bool) {
	f, isFile := r.(*os.File)
	if !isFile {
		return nil, false
	}
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, false // not a terminal
	}
	old := *t
	t.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, false
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, &old) }, true
}
