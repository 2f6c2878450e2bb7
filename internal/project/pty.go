package project

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A command exec'd into a machine gets a pseudo-terminal of its own, as
// docker exec -t gives one, rather than the caller's terminal: the
// caller's terminal is the controlling tty of the caller's session, which
// a command running as an unprivileged user may not take over (its
// setsid + TIOCSCTTY fails with EPERM), so job control and ^C would not
// reach it. berth relays between the two terminals, with the caller's in
// raw mode so every key reaches the command.

// openPTY returns a new pseudo-terminal: the master berth keeps and the
// slave the command gets.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open a pseudo-terminal: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock the pseudo-terminal: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("name the pseudo-terminal: %w", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open the pseudo-terminal: %w", err)
	}
	return m, s, nil
}

// makeRaw puts terminal fd in raw mode (as cfmakeraw does) and returns
// how to restore it.
func makeRaw(fd int) (func(), error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

func copySize(from, to *os.File) {
	if ws, err := unix.IoctlGetWinsize(int(from.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(to.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// withPTY runs run with a new pseudo-terminal's slave as the command's
// stdin, stdout and stderr, relaying the caller's terminal (in) to it and
// its output to out until the command ended and its output is drained.
func withPTY(in *os.File, out io.Writer, run func(slave *os.File) error) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer master.Close()
	copySize(in, slave)
	if restore, err := makeRaw(int(in.Fd())); err == nil {
		defer restore()
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			copySize(in, slave)
		}
	}()
	// The caller's input is relayed for as long as berth runs; a read
	// blocked on it when the command ends is harmless, berth exits.
	go io.Copy(master, in)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Ends with EIO once the command and every copy of the slave
		// are gone.
		io.Copy(out, master)
	}()
	runErr := run(slave)
	slave.Close()
	wg.Wait()
	close(winch)
	return runErr
}

// errNotTerminal: TTY was asked for but stdin is not a terminal.
var errNotTerminal = errors.New("stdin is not a terminal")

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
