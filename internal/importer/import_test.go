package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/store"
)

func rootfsEnts(prefix string) []ent {
	return []ent{
		dir(prefix + "etc/"), file(prefix+"etc/os-release", "ID=test\n"), dir(prefix + "usr/"), dir(prefix + "usr/bin/"),
		file(prefix+"usr/bin/tool", "#!/bin/sh\n"), sym(prefix+"bin", "usr/bin"), hard(prefix+"etc/os-release.hl", prefix+"etc/os-release"),
	}
}

// TestImportCompressionsAndLift imports a rootfs tar in every compression,
// plain and wrapped in a single top-level directory, from a file.
func TestImportCompressionsAndLift(t *testing.T) {
	for _, comp := range []string{compNone, compGzip, compXz, compZstd, compBzip2} {
		for _, wrapped := range []bool{false, true} {
			name := comp
			if wrapped {
				name += "/lifted"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t)
				var ents []ent
				if wrapped {
					ents = append([]ent{dir("./debian-rootfs/")}, rootfsEnts("./debian-rootfs/")...)
				} else {
					ents = rootfsEnts("")
				}
				src := filepath.Join(t.TempDir(), "My_Rootfs-12.tar.stuff") // the name says nothing
				os.WriteFile(src, compress(t, mkTar(t, ents...), comp), 0o644)
				res := e.mustImport(t, src)
				if res.Format != FormatRootfs || res.Compression != comp {
					t.Errorf("format %s compression %s, want rootfs %s", res.Format, res.Compression, comp)
				}
				if wrapped != (res.Lifted == "debian-rootfs") {
					t.Errorf("lifted %q", res.Lifted)
				}
				n := res.Record.Name
				if n != "my-rootfs-12-tar-stuff" {
					t.Errorf("default name %q", n)
				}
				if got := e.read(t, n, "etc/os-release"); got != "ID=test\n" {
					t.Errorf("etc/os-release = %q", got)
				}
				if got := e.read(t, n, "etc/os-release.hl"); got != "ID=test\n" {
					t.Errorf("hard link = %q", got)
				}
				if l, err := os.Readlink(filepath.Join(e.machines, n, "bin")); err != nil || l != "usr/bin" {
					t.Errorf("bin -> %q %v", l, err)
				}
				if _, err := os.Stat(filepath.Join(e.machines, n, "debian-rootfs")); err == nil {
					t.Error("the top-level directory was not lifted")
				}
				rec, cfg, err := store.LoadMachine(e.root, n)
				if err != nil {
					t.Fatal(err)
				}
				host := pull.RuntimePlatform()
				if cfg.OS != host.OS || cfg.Architecture != host.Architecture || rec.Platform.Architecture != host.Architecture {
					t.Errorf("platform %s/%s, want the host's %s", cfg.OS, cfg.Architecture, host.String())
				}
				if len(cfg.RootFS.DiffIDs) != 1 || len(rec.Layers) != 1 || rec.Layers[0].DiffID != cfg.RootFS.DiffIDs[0] {
					t.Fatalf("diff_ids %v layers %v", cfg.RootFS.DiffIDs, rec.Layers)
				}
				if !wrapped {
					// The tar itself is the layer: its DiffID is its sha256.
					if cfg.RootFS.DiffIDs[0].Hex != sha(mkTar(t, ents...)) {
						t.Errorf("diff_id %s is not the tar's sha256", cfg.RootFS.DiffIDs[0])
					}
				}
				if len(cfg.History) != 1 || cfg.History[0].CreatedBy != "berth import "+src {
					t.Errorf("history %+v", cfg.History)
				}
				if rec.Reference != src {
					t.Errorf("reference %q", rec.Reference)
				}
				// Importing the same file again changes nothing.
				again := e.mustImport(t, src)
				if !again.UpToDate {
					t.Error("second import of the same file was not up to date")
				}
			})
		}
	}
}

// A tar holding only usr/ is a tree, not a wrapped rootfs: not lifted.
func TestNoLiftOfRootfsDirectory(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "usr.tar")
	os.WriteFile(src, mkTar(t, dir("usr/"), file("usr/x", "x")), 0o644)
	res := e.mustImport(t, src, func(o *Options) { o.Name = "u" })
	if res.Lifted != "" || e.read(t, "u", "usr/x") != "x" {
		t.Errorf("lifted %q", res.Lifted)
	}
}

func TestImportStdinWithSHA256(t *testing.T) {
	e := newEnv(t)
	tb := compress(t, mkTar(t, rootfsEnts("")...), compGzip)
	_, err := e.run(t, "-", func(o *Options) {
		o.Stdin, o.Name, o.SHA256 = bytes.NewReader(tb), "in", strings.Repeat("0", 64)
	})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("wrong --sha256: %v, want ErrChecksum", err)
	}
	e.assertNothingInstalled(t, false)
	if _, err := e.run(t, "-", func(o *Options) { o.Stdin = bytes.NewReader(tb) }); err == nil || !strings.Contains(err.Error(), "--name") {
		t.Errorf("stdin without --name: %v", err)
	}
	if _, err := e.run(t, "-", func(o *Options) { o.Stdin, o.Name, o.Verify = bytes.NewReader(tb), "in", VerifyChecksum }); err == nil {
		t.Error("--verify=checksum on stdin succeeded")
	}
	res := e.mustImport(t, "-", func(o *Options) { o.Stdin, o.Name, o.SHA256 = bytes.NewReader(tb), "in", "sha256:"+sha(tb) })
	if res.Record.Name != "in" || e.read(t, "in", "etc/os-release") != "ID=test\n" {
		t.Errorf("stdin import: %+v", res.Record)
	}
}

func TestImportURLChecksum(t *testing.T) {
	tb := compress(t, mkTar(t, rootfsEnts("")...), compGzip)
	bad := bytes.Clone(tb)
	bad[len(bad)/2] ^= 0x40
	srv := newFileServer(t, map[string][]byte{
		"/img/debian.tar.gz":    tb,
		"/img/SHA256SUMS":       []byte(sha(mkTar(t)) + "  other.tar\n" + sha(tb) + " *debian.tar.gz\n" + sha(tb) + "  flipped.tar.gz\n" + strings.Repeat("1", 64) + "  wrong.tar.gz\n"),
		"/img/flipped.tar.gz":   bad,
		"/img/wrong.tar.gz":     tb,
		"/img/cut.tar.gz":       tb,
		"/nosums/debian.tar.gz": tb,
		"/img/notlisted.tar.gz": tb,
		"/img/short.tar.gz":     tb[:len(tb)-10],
	})
	srv.files["/img/SHA256SUMS"] = append(srv.files["/img/SHA256SUMS"], []byte(sha(tb)+"  short.tar.gz\n"+sha(tb)+"  cut.tar.gz\n")...)

	for _, tc := range []struct {
		path    string
		want    error
		partial bool
	}{
		{"/img/flipped.tar.gz", ErrChecksum, false},
		{"/img/wrong.tar.gz", ErrChecksum, false},
		{"/img/short.tar.gz", ErrChecksum, false},
		{"/nosums/debian.tar.gz", ErrNoChecksum, false},
		{"/img/notlisted.tar.gz", ErrNoChecksum, false},
		{"/img/cut.tar.gz", io.ErrUnexpectedEOF, true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			e := newEnv(t)
			if tc.path == "/img/cut.tar.gz" {
				srv.cut[tc.path] = 100 // cut every time
			}
			_, err := e.run(t, srv.URL+tc.path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error does not name the source: %v", err)
			}
			e.assertNothingInstalled(t, tc.partial)
		})
	}
	delete(srv.cut, "/img/cut.tar.gz")

	e := newEnv(t)
	res := e.mustImport(t, srv.URL+"/img/debian.tar.gz")
	if res.Record.Name != "debian" || e.read(t, "debian", "usr/bin/tool") != "#!/bin/sh\n" || res.Record.Reference != srv.URL+"/img/debian.tar.gz" {
		t.Errorf("import: %+v", res.Record)
	}
	// --verify=no imports what has no SHA256SUMS.
	e.mustImport(t, srv.URL+"/nosums/debian.tar.gz", func(o *Options) { o.Verify, o.Name = VerifyNo, "unchecked" })
	spool, _ := os.ReadDir(filepath.Join(e.root, "spool"))
	if len(spool) != 0 {
		t.Errorf("spool not empty after imports: %v", spool)
	}
}

// TestImportResume: the server drops the connection halfway once; the
// download resumes with a Range request and the result verifies.
func TestImportResume(t *testing.T) {
	big := make([]byte, 3<<20) // incompressible enough to span many reads
	for i := range big {
		big[i] = byte(i * 7919 >> 3)
	}
	tb := mkTar(t, append(rootfsEnts(""), file("big", string(big)))...)
	srv := newFileServer(t, map[string][]byte{"/r/root.tar": tb, "/r/SHA256SUMS": []byte(sha(tb) + "  root.tar\n")})
	srv.cut["/r/root.tar"] = 1
	e := newEnv(t)
	res := e.mustImport(t, srv.URL+"/r/root.tar")
	if e.read(t, res.Record.Name, "big") != string(big) {
		t.Error("big differs")
	}
	if len(srv.ranges) != 2 || srv.ranges[0] != "" || !strings.HasPrefix(srv.ranges[1], "bytes=") || srv.ranges[1] == "bytes=0-" {
		t.Errorf("requests' Range headers %q, want none then a resume", srv.ranges)
	}

	// Across runs: no retries, the first run fails and keeps what arrived,
	// the second resumes.
	e2 := newEnv(t)
	srv.ranges = nil
	srv.cut["/r/root.tar"] = 1
	if _, err := e2.run(t, srv.URL+"/r/root.tar", func(o *Options) { o.Retries = -1 }); err == nil || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("cut download without retries: %v", err)
	}
	e2.assertNothingInstalled(t, true)
	e2.mustImport(t, srv.URL+"/r/root.tar", func(o *Options) { o.Retries = -1 })
	if len(srv.ranges) != 2 || !strings.HasPrefix(srv.ranges[1], "bytes=") {
		t.Errorf("second run's Range %q", srv.ranges)
	}
}

// TestImportSignature signs SHA256SUMS with a throwaway key.
func TestImportSignature(t *testing.T) {
	requireTool(t, "gpg", "gpgv")
	home, err := os.MkdirTemp("", "gpg") // short: the agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	gpg := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
		}
		return out.Bytes()
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	gpg("--quick-gen-key", "berth test <test@berth.invalid>", "ed25519", "sign", "never")
	keyring := filepath.Join(t.TempDir(), "keyring.gpg")
	os.WriteFile(keyring, gpg("--export"), 0o644)

	tb := compress(t, mkTar(t, rootfsEnts("")...), compGzip)
	sums := []byte(sha(tb) + "  img.tar.gz\n")
	sumsFile := filepath.Join(t.TempDir(), "SHA256SUMS")
	os.WriteFile(sumsFile, sums, 0o644)
	sig := gpg("--detach-sign", "-o", "-", sumsFile)
	forged := append(bytes.Clone(sums), []byte(strings.Repeat("2", 64)+"  evil.tar.gz\n")...)
	srv := newFileServer(t, map[string][]byte{
		"/s/img.tar.gz": tb, "/s/SHA256SUMS": sums, "/s/SHA256SUMS.gpg": sig,
		"/f/img.tar.gz": tb, "/f/SHA256SUMS": forged, "/f/SHA256SUMS.gpg": sig,
		"/u/img.tar.gz": tb, "/u/SHA256SUMS": sums,
	})
	sigOpts := func(o *Options) { o.Verify, o.Keyring = VerifySignature, keyring }

	for _, tc := range []struct {
		name, path string
		mod        func(*Options)
	}{
		{"forged SHA256SUMS", "/f/img.tar.gz", sigOpts},
		{"unsigned", "/u/img.tar.gz", sigOpts},
		{"missing keyring", "/s/img.tar.gz", func(o *Options) { o.Verify, o.Keyring = VerifySignature, keyring+".nope" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.run(t, srv.URL+tc.path, tc.mod)
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("err %v, want ErrSignature", err)
			}
			e.assertNothingInstalled(t, false)
		})
	}
	e := newEnv(t)
	res := e.mustImport(t, srv.URL+"/s/img.tar.gz", sigOpts)
	if res.Record.Name != "img" {
		t.Errorf("name %q", res.Record.Name)
	}
	// The same checks for a file with SHA256SUMS and its signature next to it.
	d := t.TempDir()
	for p, b := range map[string][]byte{"img.tar.gz": tb, "SHA256SUMS": sums, "SHA256SUMS.gpg": sig} {
		os.WriteFile(filepath.Join(d, p), b, 0o644)
	}
	e.mustImport(t, filepath.Join(d, "img.tar.gz"), sigOpts, func(o *Options) { o.Name = "local" })
}

func TestImportACI(t *testing.T) {
	manifest := `{
		"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/reduce-worker",
		"labels": [{"name": "version", "value": "1.0.0"}, {"name": "arch", "value": "aarch64"}, {"name": "os", "value": "linux"}],
		"app": {
			"exec": ["/usr/bin/reduce-worker", "--quiet"],
			"user": "100", "group": "300", "supplementaryGIDs": [400, 500],
			"eventHandlers": [{"exec": ["/usr/bin/data-downloader"], "name": "pre-start"}],
			"workingDirectory": "/opt/work",
			"environment": [{"name": "REDUCE_WORKER_DEBUG", "value": "true"}],
			"isolators": [{"name": "resource/cpu", "value": {"limit": "20"}}, {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE"]}}],
			"mountPoints": [{"name": "work", "path": "/var/lib/work", "readOnly": false}, {"name": "conf", "path": "/etc/conf", "readOnly": true}],
			"ports": [{"name": "health", "port": 4000, "protocol": "tcp"}, {"name": "range", "port": 5000, "protocol": "udp", "count": 2, "socketActivated": true}]
		},
		"dependencies": [{"imageName": "example.com/reduce-worker-base"}],
		"annotations": [{"name": "authors", "value": "Carly <carly@example.com>"}, {"name": "created", "value": "2014-10-27T19:32:58Z"}],
		"somethingNew": 1
	}`
	tb := mkTar(t, file("manifest", manifest), dir("rootfs/"), dir("rootfs/etc/"), file("rootfs/etc/hostname", "aci\n"),
		file("rootfs/../../escape", "x"), file("extra", "y"))
	src := filepath.Join(t.TempDir(), "reduce-worker.aci")
	os.WriteFile(src, compress(t, tb, compGzip), 0o644)
	var warn bytes.Buffer
	e := newEnv(t)
	res := e.mustImport(t, src, func(o *Options) { o.Warn = &warn })
	if res.Format != FormatACI || res.Record.Name != "reduce-worker" {
		t.Fatalf("format %s name %s", res.Format, res.Record.Name)
	}
	if e.read(t, "reduce-worker", "etc/hostname") != "aci\n" {
		t.Error("rootfs/ not the root")
	}
	for _, p := range []string{"manifest", "rootfs", "extra", "escape"} {
		if _, err := os.Lstat(filepath.Join(e.machines, "reduce-worker", p)); err == nil {
			t.Errorf("%s is in the machine", p)
		}
	}
	_, cfg, err := store.LoadMachine(e.root, "reduce-worker")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	check := func(what string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s = %s, want %s", what, g, w)
		}
	}
	check("Cmd", c.Cmd, []string{"/usr/bin/reduce-worker", "--quiet"})
	check("Entrypoint", c.Entrypoint, []string(nil))
	check("User", c.User, "100:300")
	check("WorkingDir", c.WorkingDir, "/opt/work")
	check("Env", c.Env, []string{"REDUCE_WORKER_DEBUG=true"})
	check("Volumes", c.Volumes, map[string]struct{}{"/var/lib/work": {}, "/etc/conf": {}})
	check("ExposedPorts", c.ExposedPorts, map[string]struct{}{"4000/tcp": {}, "5000/udp": {}, "5001/udp": {}})
	check("Labels", c.Labels, map[string]string{
		"org.opencontainers.image.title": "example.com/reduce-worker", "org.opencontainers.image.version": "1.0.0",
		"org.opencontainers.image.authors": "Carly <carly@example.com>",
	})
	check("platform", []string{cfg.OS, cfg.Architecture}, []string{"linux", "arm64"})
	check("created", cfg.Created.UTC().Format("2006-01-02T15:04:05Z"), "2014-10-27T19:32:58Z")
	w := warn.String()
	for _, named := range []string{
		"app.isolators: not supported by berth; ignored: resource/cpu, os/linux/capabilities-retain-set",
		"app.eventHandlers: not supported", "app.supplementaryGIDs: not supported", "dependencies: not supported by berth; ignored: example.com/reduce-worker-base",
		"app.mountPoints.conf.readOnly", "app.ports.range.socketActivated", "somethingNew: unknown key",
		"ACI entry extra is outside rootfs/", "ACI entry escape is outside rootfs/",
	} {
		if !strings.Contains(w, named) {
			t.Errorf("warnings lack %q:\n%s", named, w)
		}
	}
}

func TestConvertACIErrors(t *testing.T) {
	for _, m := range []string{
		`{"acKind": "PodManifest"}`,
		`{"acKind": "ImageManifest", "labels": [{"name": "arch", "value": "pdp11"}]}`,
		`{"acKind": "ImageManifest", "app": {"exec": ["/x"], "ports": [{"name": "p", "port": 70000, "protocol": "tcp"}]}}`,
		`{"acKind": "ImageManifest", "app": {"exec": ["/x"], "mountPoints": [{"name": "m", "path": "rel"}]}}`,
	} {
		if _, err := ConvertACI([]byte(m)); err == nil {
			t.Errorf("ConvertACI(%s) succeeded", m)
		}
	}
	a, err := ConvertACI([]byte(`{"acKind": "ImageManifest", "app": {"exec": ["/x"], "user": "/etc/owner", "group": "0"}}`))
	if err != nil || a.Config.User != "" || !slices.ContainsFunc(a.Warnings, func(s string) bool { return strings.Contains(s, "app.user/app.group") }) {
		t.Errorf("user as a path: %+v %v", a, err)
	}
}

func TestLookupSum(t *testing.T) {
	h := strings.Repeat("ab", 32)
	sums := []byte("# comment\n" + strings.Repeat("cd", 32) + "  a.tar\n" + strings.ToUpper(h) + " *./b.tar\nSHA256 (c.tar) = " + h + "\n")
	for _, name := range []string{"b.tar", "c.tar"} {
		if got, err := lookupSum(sums, name); err != nil || got != (v1.Hash{Algorithm: "sha256", Hex: h}) {
			t.Errorf("lookupSum(%s) = %v, %v", name, got, err)
		}
	}
	if _, err := lookupSum(sums, "d.tar"); !errors.Is(err, ErrNoChecksum) {
		t.Errorf("missing entry: %v", err)
	}
}
