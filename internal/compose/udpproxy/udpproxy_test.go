package udpproxy

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestRelay sends datagrams from two clients through the proxy to an echo
// server; each client gets its own replies.
func TestRelay(t *testing.T) {
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFromUDP(buf)
			if err != nil {
				return
			}
			echo.WriteToUDP(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	front, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, front, echo.LocalAddr().(*net.UDPAddr), time.Minute) }()

	for _, msg := range []string{"one", "two"} {
		c, err := net.Dial("udp", front.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Retransmit until a reply arrives, as UDP clients do: the proxy
		// may still be starting.
		buf := make([]byte, 1500)
		var got string
		for got == "" {
			c.Write([]byte(msg))
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, err := c.Read(buf); err == nil {
				got = string(buf[:n])
			}
		}
		if got != "echo:"+msg {
			t.Errorf("client %s got %q", msg, got)
		}
		c.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
