package testhost

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// DialContext opens a connection inside the host's network namespace, so
// the test process can talk to services on the host's 127.0.0.1 without
// any route, veth or port forward on the outer machine.
//
// The socket is created on an OS thread that has joined the host's network
// namespace; a socket stays in the namespace it was created in, so the
// thread can go back (or be discarded) right after.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	_, leader := h.current()
	if leader == 0 {
		return nil, fmt.Errorf("dial %s in test host %s: host is not running", addr, h.name)
	}
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", leader))
	if err != nil {
		return nil, fmt.Errorf("dial %s in test host %s: %w", addr, h.name, err)
	}
	defer target.Close()

	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("join network namespace: %w", err)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
			// The thread stays locked, so the runtime discards it when
			// this goroutine ends rather than reuse it in the wrong
			// namespace.
			if conn != nil {
				conn.Close()
			}
			ch <- result{err: fmt.Errorf("return to own network namespace: %w", serr)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{conn: conn, err: err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("dial %s in test host %s: %w", addr, h.name, r.err)
	}
	return r.conn, nil
}

// HTTPClient returns a client whose connections are made inside the host's
// network namespace (see DialContext). Make a new one after Reboot: the
// host then has a new namespace.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{
		Transport: h.Transport(),
		Timeout:   2 * time.Minute,
	}
}

// Transport is the http.RoundTripper behind HTTPClient, for libraries such
// as go-containerregistry's remote that take a transport.
func (h *Host) Transport() *http.Transport {
	return &http.Transport{
		DialContext:         h.DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
		// The host has no proxy; the test process's environment must not
		// send requests elsewhere.
		Proxy: nil,
	}
}
