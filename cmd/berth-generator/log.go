package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// journalSocket is journald's native protocol socket.
const journalSocket = "/run/systemd/journal/socket"

// systemLog is where a generator's findings must go to be seen: systemd
// connects a generator's stderr to the console, not the journal. The
// journal when journald runs (daemon-reload), else the kernel log (early
// boot; journald imports it once it starts), as systemd's own generators
// and quadlet do. Each message is also written to stderr.
type systemLog struct {
	stderr  io.Writer
	journal int       // a datagram socket to journald; -1: not reachable
	kmsg    io.Writer // nil: not writable
}

// stderrLog logs to stderr only.
func stderrLog(stderr io.Writer) *systemLog { return &systemLog{stderr: stderr, journal: -1} }

// openSystemLog connects to journald (a unix datagram socket, through
// x/sys/unix: the net package would pull cgo into a lean binary), or opens
// the kernel log.
func openSystemLog(stderr io.Writer) *systemLog {
	l := stderrLog(stderr)
	if fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err == nil {
		if unix.Connect(fd, &unix.SockaddrUnix{Name: journalSocket}) == nil {
			l.journal = fd
			return l
		}
		unix.Close(fd)
	}
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		l.kmsg = f
	}
	return l
}

// printf logs one message at syslog priority prio (3 error, 4 warning).
func (l *systemLog) printf(prio int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(l.stderr, "berth-generator: "+msg)
	switch {
	case l.journal >= 0:
		unix.Write(l.journal, journalEntry(prio, msg))
	case l.kmsg != nil:
		fmt.Fprintf(l.kmsg, "<%d>berth-generator[%d]: %s\n", prio, os.Getpid(), msg)
	}
}

func (l *systemLog) close() {
	if c, ok := l.kmsg.(io.Closer); ok {
		c.Close()
	}
	if l.journal >= 0 {
		unix.Close(l.journal)
	}
}

// journalEntry encodes a message in journald's native protocol, each
// field in the length-prefixed form so any byte is safe.
func journalEntry(prio int, msg string) []byte {
	var b bytes.Buffer
	field := func(k, v string) {
		b.WriteString(k)
		b.WriteByte('\n')
		binary.Write(&b, binary.LittleEndian, uint64(len(v)))
		b.WriteString(v)
		b.WriteByte('\n')
	}
	field("MESSAGE", msg)
	field("PRIORITY", strconv.Itoa(prio))
	field("SYSLOG_IDENTIFIER", "berth-generator")
	field("SYSLOG_PID", strconv.Itoa(os.Getpid()))
	return b.Bytes()
}
