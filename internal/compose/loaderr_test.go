package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// svc is a one-file project named t whose services: body is y.
func svc(y string) map[string]string {
	return map[string]string{"compose.yaml": "name: t\nservices:\n" + y}
}

// TestLoadErrorsNameKeyAndLine provokes compose-go's load errors and
// checks each names file:line and the key path (the golden archives
// load-*.txtar show the whole messages of one case per class).
func TestLoadErrorsNameKeyAndLine(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		env   []string
		// want is how the error starts after the project directory.
		want string
	}{
		{"port variable unset", svc("  a:\n    image: x\n    ports: [\"$DB_PORT\"]\n"), nil, "compose.yaml:5: services.a.ports.0: no port specified"},
		{"port not a number", svc("  a:\n    image: x\n    ports:\n      - \"80\"\n      - \"abc\"\n"), nil, "compose.yaml:7: services.a.ports.1: invalid containerPort"},
		{"port range reversed", svc("  a:\n    image: x\n    ports: [\"90-80:90-80\"]\n"), nil, "compose.yaml:5: services.a.ports.0: "},
		{"port host_ip", svc("  a:\n    image: x\n    ports:\n      - target: 80\n        host_ip: nope\n"), nil, "compose.yaml:7: services.a.ports.0.host_ip: invalid ip address"},
		{"volume empty section", svc("  a:\n    image: x\n    volumes: [\":/f\"]\n"), nil, "compose.yaml:5: services.a.volumes.0: invalid spec"},
		{"volume empty", svc("  a:\n    image: x\n    volumes: [\"\"]\n"), nil, "compose.yaml:5: services.a.volumes.0: invalid empty volume spec"},
		{"volume no target", svc("  a:\n    image: x\n    volumes:\n      - type: volume\n        source: v\nvolumes:\n  v: {}\n"), nil, "compose.yaml:6: services.a.volumes.0: "},
		{"bind without source", svc("  a:\n    image: x\n    volumes:\n      - type: bind\n        target: /a\n"), nil, "compose.yaml:6: services.a.volumes.0."},
		{"platform", svc("  a:\n    image: x\n    platform: linux/riscv64\n    build:\n      context: .\n      platforms: [linux/amd64]\n"), nil, "compose.yaml:5: services.a.platform: "},
		{"network_mode and networks", svc("  a:\n    image: x\n    network_mode: host\n    networks: [default]\n"), nil, "compose.yaml:6: services.a.networks"},
		{"healthcheck test", svc("  a:\n    image: x\n    healthcheck:\n      test: [\"FOO\"]\n"), nil, "compose.yaml:6: services.a.healthcheck.test"},
		{"dependency cycle", svc("  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n"), nil, "compose.yaml:5: services.a.depends_on.0: dependency cycle"},
		{"network_mode service", svc("  a:\n    image: x\n    network_mode: service:nope\n"), nil, "compose.yaml:5: services.a.network_mode: "},
		{"volumes_from service", svc("  a:\n    image: x\n    volumes_from: [nope]\n"), nil, "compose.yaml:5: services.a.volumes_from: "},
		{"undefined secret", svc("  a:\n    image: x\n    secrets: [s]\n"), nil, "compose.yaml:5: service \"a\" refers to undefined secret"},
		{"scale and replicas", svc("  a:\n    image: x\n    scale: 2\n    deploy:\n      replicas: 3\n"), nil, "compose.yaml:7: services.a.deploy.replicas: "},
		{"mem_limit and deploy", svc("  a:\n    image: x\n    mem_limit: 1g\n    deploy:\n      resources:\n        limits:\n          memory: 2g\n"), nil, "compose.yaml:8: services.a.deploy.resources.limits"},
		{"container_name and scale", svc("  a:\n    image: x\n    container_name: cc\n    scale: 2\n"), nil, "compose.yaml:"},
		{"watch without target", svc("  a:\n    image: x\n    develop:\n      watch:\n        - path: .\n          action: sync\n"), nil, "compose.yaml:7: services.a.develop.watch.0: "},
		{"watch blank path", svc("  a:\n    image: x\n    develop:\n      watch:\n        - path: \"\"\n          action: rebuild\n"), nil, "compose.yaml:7: services.a.develop.watch.0.path: "},
		{"secret without source", svc("  a:\n    image: x\nsecrets:\n  s: {}\n"), nil, "compose.yaml:6: secrets.s: "},
		{"config file and content", svc("  a:\n    image: x\nconfigs:\n  c:\n    file: ./a\n    content: b\n"), nil, "compose.yaml:8: configs.c.content: "},
		{"external and driver", svc("  a:\n    image: x\nvolumes:\n  v:\n    external: true\n    driver: foo\n"), nil, "compose.yaml:8: volumes.v.driver: "},
		{"extra_hosts without IP", svc("  a:\n    image: x\n    extra_hosts: [\"nohost\"]\n"), nil, "compose.yaml:5: services.a.extra_hosts.0: "},
		{"env_file missing", svc("  a:\n    image: x\n    env_file: [missing.env]\n"), nil, "compose.yaml:5: services.a.env_file.0: env file"},
		{"env_file unknown format", map[string]string{"compose.yaml": "name: t\nservices:\n  a:\n    image: x\n    env_file:\n      - path: x.env\n        format: weird\n", "x.env": "A=1\n"}, nil, "compose.yaml:7: services.a.env_file.0.format: unsupported env_file format"},
		{"label_file missing", svc("  a:\n    image: x\n    label_file: [missing.labels]\n"), nil, "compose.yaml:5: services.a.label_file.0: "},
		{"device mapping", svc("  a:\n    image: x\n    devices: [\"a:b:c:d\"]\n"), nil, "compose.yaml:5: services.a.devices.0: "},
		{"duration", svc("  a:\n    image: x\n    stop_grace_period: 5x\n"), nil, "compose.yaml:5: services.a.stop_grace_period: "},
		{"size", svc("  a:\n    image: x\n    shm_size: lots\n"), nil, "compose.yaml:5: services.a.shm_size: "},
		{"gpus count", svc("  a:\n    image: x\n    gpus:\n      - count: some\n"), nil, "compose.yaml:6: services.a.gpus.0.count: "},
		{"blkio weight", svc("  a:\n    image: x\n    blkio_config:\n      weight: lots\n"), nil, "compose.yaml:6: services.a.blkio_config.weight: "},
		{"interpolation required", svc("  a:\n    image: \"${IMG:?set IMG}\"\n"), nil, "compose.yaml:4: error while interpolating services.a.image"},
		{"interpolation format", svc("  a:\n    image: \"${IMG\"\n"), nil, "compose.yaml:4: invalid interpolation format for services.a.image"},
		{"interpolation cast", svc("  a:\n    image: x\n    privileged: \"$P\"\n"), nil, "compose.yaml:5: error while interpolating services.a.privileged"},
		{"non-string key", svc("  a:\n    image: x\n    labels:\n      1: x\n"), nil, "compose.yaml:6: services.a.labels.1: "},
		{"include missing", map[string]string{"compose.yaml": "name: t\ninclude:\n  - other.yaml\nservices:\n  a:\n    image: x\n"}, nil, "compose.yaml:3: include.0: "},
		{"include cycle", map[string]string{"compose.yaml": "name: t\ninclude:\n  - o.yaml\nservices:\n  a:\n    image: x\n", "o.yaml": "include:\n  - compose.yaml\nservices:\n  b:\n    image: x\n"}, nil, "compose.yaml:3: include.0: include cycle"},
		{"extends missing service", svc("  a:\n    image: x\n    extends: nope\n"), nil, "compose.yaml:5: services.a.extends: "},
		{"extends missing file", svc("  a:\n    image: x\n    extends:\n      file: nope.yaml\n      service: b\n"), nil, "compose.yaml:6: services.a.extends.file: "},
		{"extends base has the error", svc("  base:\n    image: x\n    ports: [\"$P\"]\n  a:\n    extends: base\n"), nil, "compose.yaml:5: services.base.ports.0: "},
		{"additional context", svc("  a:\n    image: x\n    build:\n      context: .\n      additional_contexts:\n        b: service:nope\n"), nil, "compose.yaml:8: services.a.build.additional_contexts.b: "},
		{"dockerfile and inline", svc("  a:\n    image: x\n    build:\n      context: .\n      dockerfile: D\n      dockerfile_inline: FROM x\n"), nil, "compose.yaml:"},
		{"no image", svc("  a:\n    command: x\n"), nil, "compose.yaml:3: services.a: "},
		{"merge of different types", map[string]string{"compose.yaml": "name: t\nservices:\n  a:\n    image: x\n    logging:\n      driver: x\n", "compose.override.yaml": "services:\n  a:\n    logging: 3\n"}, nil, "compose.override.yaml:3: services.a.logging: cannot merge logging"},
		{"error in the second file", map[string]string{"compose.yaml": "name: t\nservices:\n  a:\n    image: x\n    ports: [\"80\"]\n", "compose.z.yaml": "services:\n  a:\n    ports: [\"$P\"]\n"}, nil, "compose.z.yaml:3: services.a.ports.0: "},
		{"merge key", map[string]string{"compose.yaml": "name: t\nx-base: &base\n  image: x\n  ports: [\"$P\"]\nservices:\n  a:\n    <<: *base\n"}, nil, "compose.yaml:4: services.a.ports.0: "},
		{"env file syntax", map[string]string{"compose.yaml": "name: t\nservices:\n  a:\n    image: x\n    env_file: [bad.env]\n", "bad.env": "A=1\nB C\n"}, nil, "compose.yaml:5: services.a.env_file.0: $W/bad.env:2: "},
		{"dotenv syntax", map[string]string{"compose.yaml": "name: t\nservices:\n  a:\n    image: x\n", ".env": "A=1\nB='x\n"}, nil, ".env:3: unterminated quoted value"},
		{"yaml syntax", svc("  a:\n    image: [x\n"), nil, "compose.yaml:4: yaml: "},
		{"yaml duplicate key", svc("  a:\n    image: x\n    image: y\n"), nil, "compose.yaml:5: services.a.image: mapping key"},
		{"top level list", map[string]string{"compose.yaml": "- a\n"}, nil, "compose.yaml:1: the top level is not a mapping"},
		{"empty", map[string]string{"compose.yaml": ""}, nil, "compose.yaml: empty compose file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var files []string
			for name, body := range c.files {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(name, "compose") {
					files = append(files, p)
				}
			}
			// compose.yaml first, then overrides.
			for i := range files {
				if filepath.Base(files[i]) == "compose.yaml" {
					files[0], files[i] = files[i], files[0]
				}
			}
			_, err := Load(context.Background(), LoadOptions{Files: files, WorkDir: dir, Environ: c.env})
			if err == nil {
				t.Fatal("loaded")
			}
			got := strings.TrimPrefix(err.Error(), "load compose project: ")
			got = strings.ReplaceAll(got, dir, "$W")
			if !strings.HasPrefix(got, "$W/"+c.want) {
				t.Errorf("got  %s\nwant $W/%s…", got, c.want)
			}
		})
	}
}

// TestExtendsCycle: compose-go starts an extends cycle from either
// service (map order), so the error names either one's extends.
func TestExtendsCycle(t *testing.T) {
	dir := t.TempDir()
	body := "name: t\nservices:\n  a:\n    image: x\n    extends: b\n  b:\n    image: x\n    extends: a\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(context.Background(), LoadOptions{WorkDir: dir})
	re := regexp.MustCompile(`compose\.yaml:(5: services\.a|8: services\.b)\.extends: Circular reference:\n\t`)
	if err == nil || !re.MatchString(err.Error()) {
		t.Errorf("got %v", err)
	}
}

// TestLoadErrorKeepsCause checks the located error still wraps
// compose-go's, so errors.Is and errors.As see through it.
func TestLoadErrorKeepsCause(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("name: t\nservices:\n  a:\n    command: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(context.Background(), LoadOptions{WorkDir: dir})
	var le *LocatedError
	if !errors.As(err, &le) || le.KeyPath != "services.a" || le.Loc.Line != 3 {
		t.Fatalf("got %v (%#v)", err, le)
	}
	if !strings.Contains(errors.Unwrap(le).Error(), "has neither an image nor a build context") {
		t.Errorf("cause lost: %v", errors.Unwrap(le))
	}
}

// TestRawEnvFile loads env_file with format: raw as docker compose does.
func TestRawEnvFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("compose.yaml", "name: t\nservices:\n  a:\n    image: x\n    env_file:\n      - path: raw.env\n        format: raw\n")
	write("raw.env", "\ufeff# comment\n  Q=\"quoted\"\nI=${X} $X\nT=trailing \nFROM\nMISSING\n")
	p := load(t, LoadOptions{WorkDir: dir, Environ: []string{"FROM=env", "X=no"}})
	got := map[string]string{}
	for k, v := range p.Services["a"].Environment {
		if v != nil {
			got[k] = *v
		}
	}
	want := map[string]string{"Q": `"quoted"`, "I": "${X} $X", "T": "trailing ", "FROM": "env"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environment %q, want %q", got, want)
	}
}

func TestParseKeyPath(t *testing.T) {
	for in, want := range map[string][]string{
		"services.web.ports.[]":         {"services", "web", "ports", "[]"},
		"services[web].gpus[0].count":   {"services", "web", "gpus", "0", "count"},
		"services.a.volumes.[0]":        {"services", "a", "volumes", "0"},
		"secrets.s":                     {"secrets", "s"},
		"services[a].extra_hosts":       {"services", "a", "extra_hosts"},
		"services.a.develop.watch.[].x": {"services", "a", "develop", "watch", "[]", "x"},
	} {
		if got := parseKeyPath(in); !reflect.DeepEqual(got, want) {
			t.Errorf("parseKeyPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitKeyPath(t *testing.T) {
	root, err := parseTop([]byte("services:\n  a.b:\n    labels:\n      com.example.x: 1\n    ports: [\"80\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := &sources{files: []sourceFile{{path: "c.yaml", root: root}}}
	for in, want := range map[string][]string{
		"services.a.b.labels.com.example.x": {"services", "a.b", "labels", "com.example.x"},
		"services.a.b.ports.0":              {"services", "a.b", "ports", "0"},
		"services.a.b.missing.x":            {"services", "a.b", "missing", "x"},
		"services.c":                        {"services", "c"},
	} {
		if got := s.splitKeyPath(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitKeyPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPathAtLine(t *testing.T) {
	root, err := parseTop([]byte("services:\n  a:\n    image: x\n    ports:\n      - target: 80\n        host_ip: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	for line, want := range map[int][]string{
		1: {"services"},
		3: {"services", "a", "image"},
		6: {"services", "a", "ports", "0", "host_ip"},
		9: nil,
	} {
		if got := pathAtLine(root, line); !reflect.DeepEqual(got, want) {
			t.Errorf("line %d: %q, want %q", line, got, want)
		}
	}
}

// TestJoined splits errors.Join but not an error wrapping two.
func TestJoined(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	if got := joined(errors.Join(a, b)); len(got) != 2 {
		t.Errorf("errors.Join: %v", got)
	}
	if got := joined(fmt.Errorf("%w and %w", a, b)); got != nil {
		t.Errorf("fmt.Errorf: %v", got)
	}
}

// TestExpand checks probes get documents without aliases, so removing a
// part never leaves an alias to a removed anchor.
func TestExpand(t *testing.T) {
	doc, ok := oneDocument([]byte("x: &a {image: x}\nservices:\n  s: *a\n  t:\n    <<: *a\n"))
	if !ok {
		t.Fatal("not one document")
	}
	var walkNodes func(n *yaml.Node)
	walkNodes = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			t.Errorf("alias or anchor left at line %d", n.Line)
		}
		for _, c := range n.Content {
			walkNodes(c)
		}
	}
	walkNodes(doc)
	if _, ok := oneDocument([]byte("a: 1\n---\nb: 2\n")); ok {
		t.Error("two documents accepted")
	}
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for _, n := range "bcdefgh" {
		prev := string(n - 1)
		bomb += fmt.Sprintf("%c: &%c [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", n, n, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	if _, ok := oneDocument([]byte(bomb)); ok {
		t.Error("alias bomb expanded")
	}
}

// FuzzLoadError loads arbitrary compose files: locating an error must not
// panic, and every error names the file.
func FuzzLoadError(f *testing.F) {
	for _, seed := range []string{
		"name: t\nservices:\n  a:\n    image: x\n    ports: [\"$P\"]\n",
		"name: t\nx: &a {image: x, volumes: [\":/f\"]}\nservices:\n  a: *a\n  b:\n    <<: *a\n",
		"name: t\nservices:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
		"name: t\ninclude: [x.yaml]\nservices: {}\n",
		"services:\n  a:\n    image: [x\n",
		"- a\n",
		"name: t\nservices:\n  a:\n    image: x\n    image: y\n",
		// Fails before compose-go's loader sets its options.
		"name: !,0",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if selfAlias(body) {
			// compose-go spends seconds on an anchor merged into itself
			// before it gives up; that is not what this fuzzes.
			t.Skip()
		}
		dir := t.TempDir()
		file := filepath.Join(dir, "compose.yaml")
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(context.Background(), LoadOptions{Files: []string{file}, WorkDir: dir})
		if err != nil && !strings.Contains(err.Error(), file) {
			t.Errorf("error does not name %s: %v", file, err)
		}
	})
}

// selfAlias reports whether body uses an anchor inside its own definition.
func selfAlias(body string) bool {
	var doc yaml.Node
	if yaml.Unmarshal([]byte(body), &doc) != nil {
		return false
	}
	var inside func(n *yaml.Node, open []*yaml.Node) bool
	inside = func(n *yaml.Node, open []*yaml.Node) bool {
		if n.Kind == yaml.AliasNode {
			for _, o := range open {
				if o == n.Alias {
					return true
				}
			}
			return false
		}
		open = append(open, n)
		for _, c := range n.Content {
			if inside(c, open) {
				return true
			}
		}
		return false
	}
	return inside(&doc, nil)
}
