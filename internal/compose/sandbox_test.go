package compose

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const sandboxEnv = "BERTH_COMPOSE_SANDBOX"

// TestSandboxProject converts a two-service project and runs what its units
// say — the bridge unit, both machines' ExecStartPre= and ExecStart= — in a
// private network and mount namespace (this host's network is never
// touched; systemd itself is not needed). The client machine reaches the
// web machine by service name over the bridge and reads its secret; the
// web page is also served on the host's 127.0.0.1:8080 through the port's
// socket and proxy commands; after ExecStopPost= and ExecStop= no link is
// left.
func TestSandboxProject(t *testing.T) {
	if bin := os.Getenv(sandboxEnv); bin != "" {
		sandboxProject(t, bin)
		return
	}
	inSandbox(t, "TestSandboxProject")
}

// TestSandboxSettings runs one machine from its rendered .nspawn file and
// unit command line and checks, from inside, that every compose setting
// took effect: user, limits, capabilities, no-new-privileges, OOM score,
// tmpfs sizes, host name, environment with % and $ over the image's (read
// from its config when the machine starts) — and that nspawn printed no
// warning about the file (systemd-analyze cannot check .nspawn files).
func TestSandboxSettings(t *testing.T) {
	if bin := os.Getenv(sandboxEnv); bin != "" {
		sandboxSettings(t, bin)
		return
	}
	inSandbox(t, "TestSandboxSettings")
}

// inSandbox builds berth and berth-init and re-runs test name under
// unshare with a private network and mount namespace.
func inSandbox(t *testing.T, name string) {
	t.Helper()
	for _, tool := range []string{"unshare", "ip", "nft", "sysctl", "systemd-nspawn", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			if requireTools() {
				t.Fatalf("%s is required: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := t.TempDir()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	for pkg, out := range map[string]string{"../../cmd/berth": "berth", "../../cmd/berth-init": "berth-init"} {
		cmd := exec.Command(gobin, "build", "-o", filepath.Join(bin, out), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, b)
		}
	}
	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private",
		os.Args[0], "-test.run=^"+name+"$", "-test.v")
	cmd.Env = append(os.Environ(), sandboxEnv+"="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+name)) {
		t.Fatalf("sandbox run failed: %v\n%s", err, out)
	}
}

// busyboxMachine makes a minimal machine root with busybox, and the image
// config a pull keeps next to it (store.ConfigPath), which the machine
// reads when it starts.
func busyboxMachine(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"bin", "usr", "etc", "proc", "sys", "dev", "tmp", "run", "www"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	bb, _ := exec.LookPath("busybox")
	data, err := os.ReadFile(bb)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755))
	config := `{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","FROM_IMAGE=image value","GREETING=from the image"],"Cmd":["/bin/busybox","false"],"WorkingDir":"/www"}}`
	must(t, os.WriteFile(root+".oci-config", []byte(config), 0o644))
}

func sandboxSettings(t *testing.T, bin string) {
	work := t.TempDir()
	proj := filepath.Join(work, "proj")
	must(t, os.MkdirAll(proj, 0o755))
	script := `echo uid=$(/bin/busybox id -u):$(/bin/busybox id -g)
echo nofile=$(ulimit -n):$(ulimit -Hn)
/bin/busybox grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status
echo oom=$(/bin/busybox cat /proc/self/oom_score_adj)
/bin/busybox df -k /scratch /dev/shm | /bin/busybox tail -2 | /bin/busybox awk '{print "tmpfs=" $6 ":" $2}'
echo host=$(/bin/busybox hostname)
echo "greeting=$$GREETING"
echo "image=$$FROM_IMAGE"
echo "cwd=$(pwd)"`
	must(t, os.WriteFile(filepath.Join(proj, "compose.yaml"), []byte(`name: sbx
services:
  worker:
    image: example/worker
    command: ["/bin/busybox", "sh", "-c", `+strconvQuote(script)+`]
    user: "1000:1000"
    working_dir: /tmp
    hostname: worker-host
    environment:
      GREETING: 'hi %n $$HOME "q" \ end'
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    ulimits:
      nofile: {soft: 1024, hard: 4096}
    security_opt: [no-new-privileges:true]
    oom_score_adj: 100
    shm_size: 64m
    network_mode: none
    volumes:
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1048576}
`), 0o644))
	p := load(t, LoadOptions{WorkDir: proj})
	opts := ConvertOptions{
		Root: filepath.Join(work, "root"), MachinesDir: filepath.Join(work, "machines"),
		Berth: filepath.Join(bin, "berth"), Init: filepath.Join(bin, "berth-init"),
		NspawnDir: "/run/systemd/nspawn", UnitDir: filepath.Join(work, "units"),
	}
	res, err := Convert(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.MkdirAll("/run/systemd/nspawn", 0o755))
	must(t, syscall.Mount("tmpfs", "/run/systemd/nspawn", "tmpfs", 0, ""))
	must(t, WriteTree("/", res.Files, TreeOptions{Chown: true}))
	busyboxMachine(t, filepath.Join(opts.MachinesDir, "sbx-worker-1"))
	var unit []byte
	for _, f := range res.Files {
		if f.Path == filepath.Join(opts.UnitDir, MachineUnit("sbx-worker-1")) {
			unit = f.Data
		}
	}
	argv := append(unitCommand(t, unit, "ExecStart"), "--register=no")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	got := strings.ReplaceAll(string(out), "\r", "")
	if err != nil {
		t.Fatalf("machine: %v\n%s", err, got)
	}
	if strings.Contains(got, ".nspawn:") {
		t.Errorf("nspawn warned about the settings file:\n%s", got)
	}
	for _, want := range []string{
		"uid=1000:1000\n",
		"nofile=1024:4096\n",
		"NoNewPrivs:\t1\n",
		"oom=100\n",
		"tmpfs=/scratch:1024\n",
		"tmpfs=/dev/shm:65536\n",
		"host=worker-host\n",
		`greeting=hi %n $HOME "q" \ end` + "\n",
		"image=image value\n",
		"cwd=/tmp\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("machine output lacks %q:\n%s", want, got)
		}
	}
	// CAP_NET_ADMIN (12) added, CAP_MKNOD (27) dropped.
	var bnd uint64
	for _, l := range strings.Split(got, "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:\t"); ok {
			bnd, _ = strconv.ParseUint(v, 16, 64)
		}
	}
	if bnd&(1<<12) == 0 || bnd&(1<<27) != 0 {
		t.Errorf("bounding set %x: want CAP_NET_ADMIN and not CAP_MKNOD", bnd)
	}
}

func strconvQuote(s string) string { return strconv.Quote(s) }

func sandboxProject(t *testing.T, bin string) {
	work := t.TempDir()
	proj := filepath.Join(work, "proj")
	must(t, os.MkdirAll(filepath.Join(proj, "www"), 0o755))
	must(t, os.WriteFile(filepath.Join(proj, "www", "index.html"), []byte("hello from web\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(proj, "compose.yaml"), []byte(`name: sbx
services:
  web:
    image: example/web
    command: ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]
    volumes: ["./www:/www:ro"]
    ports: ["127.0.0.1:8080:80"]
  client:
    image: example/client
    command: ["/bin/busybox", "sh", "-c", "/bin/busybox cat /run/secrets/token; echo; until /bin/busybox wget -q -O - http://web/index.html; do /bin/busybox sleep 0.1; done"]
    depends_on: [web]
    secrets: [token]
secrets:
  token:
    environment: TOKEN
`), 0o644))
	p := load(t, LoadOptions{WorkDir: proj, Environ: []string{"TOKEN=tok-123"}})
	opts := ConvertOptions{
		Root:        filepath.Join(work, "root"),
		MachinesDir: filepath.Join(work, "machines"),
		Berth:       filepath.Join(bin, "berth"),
		Init:        filepath.Join(bin, "berth-init"),
		// nspawn also trusts /run/systemd/nspawn, which this mount
		// namespace can cover with a tmpfs; units are only read here.
		NspawnDir: "/run/systemd/nspawn",
		UnitDir:   filepath.Join(work, "units"),
	}
	res, err := Convert(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/run/netns", "/run/systemd/nspawn"} {
		must(t, os.MkdirAll(d, 0o755))
		must(t, syscall.Mount("tmpfs", d, "tmpfs", 0, ""))
	}
	for _, f := range res.Files {
		if !strings.HasPrefix(f.Path, work+"/") && !strings.HasPrefix(f.Path, "/run/systemd/nspawn/") {
			t.Fatalf("refusing to install %s outside the sandbox", f.Path)
		}
	}
	must(t, WriteTree("/", res.Files, TreeOptions{Chown: true}))
	for _, sp := range res.Plan.Services {
		busyboxMachine(t, filepath.Join(opts.MachinesDir, sp.Instances[0].Machine))
	}
	units := map[string][]byte{}
	for _, f := range res.Files {
		if path.Dir(f.Path) == opts.UnitDir {
			units[path.Base(f.Path)] = f.Data
		}
	}
	run := func(unit, key string) *exec.Cmd {
		t.Helper()
		argv := unitCommand(t, units[unit], key)
		if key == "ExecStart" && strings.HasSuffix(argv[0], "systemd-nspawn") {
			argv = append(argv, "--register=no") // no machined here
		}
		return exec.Command(argv[0], argv[1:]...)
	}
	mustRun := func(unit, key string) {
		t.Helper()
		if out, err := run(unit, key).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", unit, key, err, out)
		}
	}
	must(t, exec.Command("ip", "link", "set", "lo", "up").Run())
	netUnit := res.Plan.Networks[0].Unit
	web, client := MachineUnit("sbx-web-1"), MachineUnit("sbx-client-1")
	mustRun(netUnit, "ExecStart")
	mustRun(web, "ExecStartPre")
	mustRun(client, "ExecStartPre")
	webCmd := run(web, "ExecStart")
	var webOut bytes.Buffer
	webCmd.Stdout, webCmd.Stderr = &webOut, &webOut
	must(t, webCmd.Start())
	out, err := run(client, "ExecStart").CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s\nweb: %s", err, out, webOut.String())
	}
	got := strings.ReplaceAll(string(out), "\r", "")
	if !strings.Contains(got, "tok-123\n") || !strings.Contains(got, "hello from web\n") {
		t.Errorf("client output lacks its secret or the web page:\n%s", got)
	}

	// The published port on the host's 127.0.0.1: the socket unit's
	// address, handed by systemd-socket-activate (standing in for
	// systemd) to the proxy command of the port service.
	portUnit := PortUnit("sbx-web-1", "tcp", "127.0.0.1", 8080)
	listen := unitValue(t, units[portUnit+".socket"], "ListenStream")
	proxy := exec.Command("systemd-socket-activate", append([]string{"-l", listen}, unitCommand(t, units[portUnit+".service"], "ExecStart")...)...)
	must(t, proxy.Start())
	page := fetchRetrying(t, "http://"+listen+"/index.html")
	proxy.Process.Signal(syscall.SIGTERM)
	proxy.Wait()
	if page != "hello from web\n" {
		t.Errorf("host 127.0.0.1:8080 served %q", page)
	}
	webCmd.Process.Signal(syscall.SIGTERM)
	webCmd.Wait()
	mustRun(web, "ExecStopPost")
	mustRun(client, "ExecStopPost")
	mustRun(netUnit, "ExecStop")
	links, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	must(t, err)
	if strings.Contains(string(links), "br-") || strings.Contains(string(links), "bv-") {
		t.Errorf("links left behind:\n%s", links)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// unitValue returns the value of the one key= line in a unit.
func unitValue(t *testing.T, unit []byte, key string) string {
	t.Helper()
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in unit:\n%s", key, unit)
	return ""
}

// fetchRetrying GETs url until a connection succeeds: the listener may
// not be bound yet when the command starts. Retries are bounded by count,
// not time.
func fetchRetrying(t *testing.T, url string) string {
	t.Helper()
	var last error
	for i := 0; i < 200; i++ {
		resp, err := http.Get(url)
		if err != nil {
			last = err
			exec.Command("sleep", "0.05").Run()
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		must(t, err)
		return string(b)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// unitCommand returns the words of the one key= command line in a unit,
// undoing internal/unit's quoting ("..." with C escapes, %% and $$).
func unitCommand(t *testing.T, unit []byte, key string) []string {
	t.Helper()
	var line string
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			line = strings.TrimPrefix(v, "-")
		}
	}
	if line == "" {
		t.Fatalf("no %s= in unit:\n%s", key, unit)
	}
	var words []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] != '"' {
			t.Fatalf("unquoted word in %q", line)
		}
		var w strings.Builder
		i := 1
		for ; i < len(line) && line[i] != '"'; i++ {
			switch {
			case line[i] == '\\' && i+1 < len(line):
				i++
				w.WriteByte(map[byte]byte{'t': '\t', '\\': '\\', '"': '"'}[line[i]])
			case (line[i] == '%' || line[i] == '$') && i+1 < len(line) && line[i+1] == line[i]:
				w.WriteByte(line[i])
				i++
			default:
				w.WriteByte(line[i])
			}
		}
		words = append(words, w.String())
		line = line[i+1:]
	}
	return words
}
