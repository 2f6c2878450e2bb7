package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeDecls writes n realistic declarations into dir: a web server, a
// worker and a database each with an image, a command, environment,
// binds, limits, a health check, extra hosts and name servers, [Unit],
// [Service] and [Install] sections; every tenth a template.
func writeDecls(t testing.TB, dir string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("app%03d", i)
		if i%10 == 9 {
			name += "@"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "[Unit]\nDescription=application %d\nAfter=network-online.target\nWants=network-online.target\n\n", i)
		fmt.Fprintf(&b, "[Container]\nImage=registry.example.org/team/app%d:1.%d\n", i%7, i)
		fmt.Fprintf(&b, "Exec=/usr/bin/app --listen :8%03d --name %s --verbose\n", i, name)
		fmt.Fprintf(&b, "Environment=APP_ID=%d APP_MODE=production \"APP_GREETING=hello world\"\n", i)
		b.WriteString("Environment=LANG=C.UTF-8 TZ=UTC\n")
		fmt.Fprintf(&b, "Volume=/srv/app%03d/data:/var/lib/app\nVolume=/srv/app%03d/config:/etc/app:ro\n", i, i)
		b.WriteString("Tmpfs=/var/cache/app:size=64m\nUser=1000\nGroup=1000\nWorkingDir=/var/lib/app\n")
		b.WriteString("Memory=512m\nPidsLimit=256\nDropCapability=CAP_NET_RAW CAP_MKNOD\nNoNewPrivileges=true\n")
		b.WriteString("AddHost=db.internal:10.0.0.2\nDNS=10.0.0.53\nDNSSearch=example.org\n")
		if i%4 == 0 {
			b.WriteString("HealthCmd=curl -fsS http://localhost:8080/healthz\nHealthInterval=15s\nHealthRetries=5\n")
		}
		b.WriteString("StopTimeout=20\n\n[Service]\nRestart=on-failure\nRestartSec=5s\n\n[Install]\nWantedBy=multi-user.target\n")
		if err := os.WriteFile(filepath.Join(dir, name+".container"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkGenerate100 runs the built generator, whole process, on 100
// declarations into a fresh output directory per run; it reports the
// median (the target is < 20 ms on the 2-core test machine). With
// $BERTH_BENCH_QUADLET naming podman's quadlet binary, each run of berth's
// generator is followed by one of quadlet on the same files (its
// QUADLET_UNIT_DIRS), and the medians of both and their ratio are
// reported: the peer measured side by side, on the same machine state.
// bench/generator.sh builds quadlet and runs it.
func BenchmarkGenerate100(b *testing.B) {
	work := b.TempDir()
	bin := filepath.Join(work, "berth-generator")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatal(err)
	}
	decls := filepath.Join(work, "decls")
	if err := os.Mkdir(decls, 0o755); err != nil {
		b.Fatal(err)
	}
	writeDecls(b, decls, 100)
	// Generators write into /run/systemd/generator, a tmpfs; /dev/shm is
	// one too.
	outs, err := os.MkdirTemp("/dev/shm", "berth-bench-")
	if err != nil {
		outs = work
	}
	defer os.RemoveAll(outs)
	berth := genRunner{name: "berth", bin: bin, env: append(os.Environ(), "BERTH_UNIT_DIRS="+decls), outs: outs}
	runners := []*genRunner{&berth}
	quadlet := genRunner{name: "quadlet", bin: os.Getenv("BERTH_BENCH_QUADLET"), env: append(os.Environ(), "QUADLET_UNIT_DIRS="+decls), outs: outs}
	if quadlet.bin != "" {
		runners = append(runners, &quadlet)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range runners {
			r.run(b, i)
		}
	}
	b.StopTimer()
	// Wall time is what boot waits for; CPU time (user + system) says
	// the same on a quiet machine and is less disturbed on a busy one.
	b.ReportMetric(berth.median(), "median-ms")
	b.ReportMetric(medianMS(berth.cpu), "median-cpu-ms")
	units, _ := filepath.Glob(filepath.Join(outs, "berth0", "*.service"))
	b.ReportMetric(float64(len(units)), "units")
	if quadlet.bin != "" {
		b.ReportMetric(quadlet.median(), "quadlet-median-ms")
		b.ReportMetric(medianMS(quadlet.cpu), "quadlet-median-cpu-ms")
		b.ReportMetric(quadlet.median()/berth.median(), "quadlet/berth")
	}
}

// genRunner runs one generator binary into a fresh output directory per
// run and keeps its times.
type genRunner struct {
	name, bin string
	env       []string
	outs      string
	wall, cpu []time.Duration
}

func (r *genRunner) run(b *testing.B, i int) {
	out := filepath.Join(r.outs, fmt.Sprintf("%s%d", r.name, i))
	if err := os.Mkdir(out, 0o755); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(r.bin, out, out, out)
	cmd.Env = r.env
	start := time.Now()
	msg, err := cmd.CombinedOutput()
	r.wall = append(r.wall, time.Since(start))
	if cmd.ProcessState != nil {
		r.cpu = append(r.cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	if err != nil || len(msg) > 0 {
		b.Fatalf("%s: %v\n%s", r.bin, err, msg)
	}
}

func (r *genRunner) median() float64 { return medianMS(r.wall) }

func medianMS(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}
