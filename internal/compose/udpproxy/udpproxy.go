// Package udpproxy forwards UDP datagrams between host clients and one
// machine address. systemd-socket-proxyd only speaks TCP, so published UDP
// ports use this behind a ListenDatagram= socket unit: it works on every
// host address, 127.0.0.1 included, which nspawn's DNAT-based Port= cannot
// serve (systemd#6106).
package udpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// DefaultIdle is how long a client's flow stays open without traffic
// (conntrack's default UDP stream timeout).
const DefaultIdle = 120 * time.Second

// Serve relays datagrams from clients on pc to target and the replies
// back, one upstream socket per client so replies reach the right one.
// It returns when ctx ends or pc fails.
func Serve(ctx context.Context, pc net.PacketConn, target *net.UDPAddr, idle time.Duration) error {
	if idle <= 0 {
		idle = DefaultIdle
	}
	var mu sync.Mutex
	flows := map[string]*net.UDPConn{}
	var wg sync.WaitGroup
	defer func() {
		mu.Lock()
		for _, c := range flows {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 64*1024)
	for {
		n, client, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("proxy udp to %s: %w", target, err)
		}
		key := client.String()
		mu.Lock()
		up, ok := flows[key]
		if !ok {
			up, err = net.DialUDP("udp", nil, target)
			if err != nil {
				mu.Unlock()
				return fmt.Errorf("proxy udp to %s: %w", target, err)
			}
			flows[key] = up
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies(pc, up, client, idle)
				mu.Lock()
				delete(flows, key)
				mu.Unlock()
				up.Close()
			}()
		}
		mu.Unlock()
		up.SetReadDeadline(time.Now().Add(idle))
		// A lost datagram is what UDP promises; a write error is not
		// fatal for the other clients.
		up.Write(buf[:n])
	}
}

// replies copies datagrams from the machine back to the client until the
// flow is idle or closed.
func replies(pc net.PacketConn, up *net.UDPConn, client net.Addr, idle time.Duration) {
	buf := make([]byte, 64*1024)
	for {
		up.SetReadDeadline(time.Now().Add(idle))
		n, err := up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			// ECONNREFUSED from ICMP port unreachable: nobody listens
			// in the machine yet; keep the flow for the next datagram.
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if _, err := pc.WriteTo(buf[:n], client); err != nil {
			return
		}
	}
}
