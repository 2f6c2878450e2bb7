package main

import (
	"fmt"
	"io"
	"os"
	"testing"
)

func BenchmarkTmpInProc(b *testing.B) {
	env := func(k string) string {
		if k == "BERTH_UNIT_DIRS" {
			return "/tmp/gb/decls"
		}
		return ""
	}
	for i := 0; i < b.N; i++ {
		run([]string{"--dry-run"}, env, io.Discard, io.Discard, stderrLog)
	}
}

func BenchmarkTmpInProcWrite(b *testing.B) {
	env := func(k string) string {
		if k == "BERTH_UNIT_DIRS" {
			return "/tmp/gb/decls"
		}
		return ""
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d := fmt.Sprintf("/dev/shm/tmpw%d", i)
		os.RemoveAll(d)
		os.Mkdir(d, 0o755)
		b.StartTimer()
		run([]string{d, d, d}, env, io.Discard, io.Discard, stderrLog)
		b.StopTimer()
		os.RemoveAll(d)
		b.StartTimer()
	}
}
