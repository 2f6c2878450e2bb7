// Command mkimage builds OCI images for berth's tests and benchmarks and
// pushes them to a registry (plain HTTP, meant for 127.0.0.1) or writes an
// OCI layout. It is a test tool, not berth's product surface.
//
//	mkimage image [config flags] --layer KIND:PATH [layer flags]... --push REF | --layout DIR
//	mkimage index --image REF... --push REF | --layout DIR
//
// Layer flags (--whiteout, --opaque, --exclude, --chown) apply to the
// --layer given before them, so flag order matters. KIND is dir (a directory,
// tarred deterministically), overlay (an overlayfs upper directory: 0:0 char
// devices become whiteouts, opaque xattrs opaque markers), tar (an existing
// tar, tar.gz or tar.zst) or "empty" with no path (a layer of markers only).
//
// The manifest (or index) digest is printed on stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

const usage = `usage:
  mkimage image [flags]   build one image (see mkimage image -h)
  mkimage index [flags]   build a multi-platform index from pushed images
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "image":
		return runImage(ctx, args[1:], stdout, stderr)
	case "index":
		return runIndex(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// output is where a built artifact goes.
type output struct {
	push   string
	layout string
	tag    string
}

func (o *output) register(fs *flag.FlagSet) {
	fs.StringVar(&o.push, "push", "", "push to this reference (plain HTTP allowed), e.g. 127.0.0.1:5000/busybox:latest")
	fs.StringVar(&o.layout, "layout", "", "write (or add) to this OCI layout directory")
	fs.StringVar(&o.tag, "tag", "", "ref name annotation in the OCI layout (default: the --push tag, else latest)")
}

func (o *output) check() error {
	if o.push == "" && o.layout == "" {
		return errors.New("nothing to do: give --push REF and/or --layout DIR")
	}
	if o.push != "" {
		if _, err := name.ParseReference(o.push, name.Insecure); err != nil {
			return fmt.Errorf("parse --push %q: %w", o.push, err)
		}
	}
	return nil
}

func (o *output) layoutTag() string {
	if o.tag != "" {
		return o.tag
	}
	if o.push != "" {
		if t, err := name.NewTag(o.push, name.Insecure); err == nil {
			return t.TagStr()
		}
	}
	return "latest"
}

func openLayout(dir string) (layout.Path, error) {
	if p, err := layout.FromPath(dir); err == nil {
		return p, nil
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("create OCI layout %s: %w", dir, err)
	}
	return p, nil
}

// imageFlags are the flags of `mkimage image` that describe the image.
type imageFlags struct {
	out                              output
	spec                             ImageSpec
	layers                           layerFlags
	entrypoint, cmd, healthCmd       string
	envs, labels, exposes, volumes   listFlag
	platform, created, tmp           string
	healthNone                       bool
	healthInterval, healthTimeout    time.Duration
	healthStart                      time.Duration
	healthRetries                    int
	workdir, user, stopSignal, compr string
}

func (f *imageFlags) register(fs *flag.FlagSet) {
	f.out.register(fs)
	fs.Var(&f.layers, "layer", "add a layer: dir:PATH, overlay:PATH, tar:PATH or empty (repeatable, in order)")
	fs.Var(layerOpt(&f.layers, "whiteout"), "whiteout", "delete PATH of lower layers in the current layer (repeatable)")
	fs.Var(layerOpt(&f.layers, "opaque"), "opaque", "hide lower-layer contents of directory PATH in the current layer (repeatable)")
	fs.Var(layerOpt(&f.layers, "exclude"), "exclude", "leave entries matching this pattern (and their subtrees) out of the current layer (repeatable)")
	fs.Var(layerOpt(&f.layers, "chown"), "chown", "force UID:GID on every entry of the current layer (default: numeric owners as on disk)")
	fs.StringVar(&f.entrypoint, "entrypoint", "", `entrypoint: JSON array ["/bin/sh","-c"] or a shell string`)
	fs.StringVar(&f.cmd, "cmd", "", `command: JSON array ["sh"] or a shell string`)
	fs.Var(&f.envs, "env", "environment variable KEY=VALUE (repeatable)")
	fs.StringVar(&f.workdir, "workdir", "", "working directory")
	fs.StringVar(&f.user, "user", "", "user[:group] to run as")
	fs.StringVar(&f.stopSignal, "stop-signal", "", "stop signal, e.g. SIGINT")
	fs.Var(&f.exposes, "expose", "exposed port PORT[/tcp|udp] (repeatable)")
	fs.Var(&f.volumes, "volume", "volume path (repeatable)")
	fs.Var(&f.labels, "label", "label KEY=VALUE (repeatable)")
	fs.StringVar(&f.healthCmd, "health-cmd", "", `healthcheck test: JSON array ["CMD","curl","-f","http://localhost/"] or a shell string (CMD-SHELL)`)
	fs.BoolVar(&f.healthNone, "health-none", false, "disable any inherited healthcheck (test NONE)")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "healthcheck interval")
	fs.DurationVar(&f.healthTimeout, "health-timeout", 0, "healthcheck timeout")
	fs.DurationVar(&f.healthStart, "health-start-period", 0, "healthcheck start period")
	fs.IntVar(&f.healthRetries, "health-retries", 0, "healthcheck retries")
	fs.StringVar(&f.platform, "platform", "linux/"+runtime.GOARCH, "image platform os/arch[/variant]")
	fs.StringVar(&f.compr, "compression", CompressGzip, "layer compression: gzip, zstd or none")
	fs.BoolVar(&f.spec.Docker, "docker", false, "use Docker v2 schema 2 media types instead of OCI")
	fs.StringVar(&f.created, "created", "1970-01-01T00:00:00Z", "creation time (RFC 3339); fixed so rebuilds give the same digest")
	fs.StringVar(&f.tmp, "tmp", "", "scratch directory for layer files (default $TMPDIR)")
}

// imageSpec checks the flags and fills the image spec from them.
func (f *imageFlags) imageSpec() (ImageSpec, error) {
	spec := f.spec
	if err := f.out.check(); err != nil {
		return spec, err
	}
	if len(f.layers.specs) == 0 {
		return spec, errors.New("no layers: give at least one --layer")
	}
	spec.Layers = f.layers.specs
	spec.Compression = f.compr
	if err := f.config(&spec.Config); err != nil {
		return spec, err
	}
	p, err := v1.ParsePlatform(f.platform)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return spec, fmt.Errorf("parse --platform %q: want os/arch[/variant]", f.platform)
	}
	spec.Platform = *p
	if spec.Created, err = time.Parse(time.RFC3339, f.created); err != nil {
		return spec, fmt.Errorf("parse --created %q: %w", f.created, err)
	}
	return spec, nil
}

// config fills the image's runtime config from the flags.
func (f *imageFlags) config(c *v1.Config) error {
	var err error
	if c.Entrypoint, err = parseCommand("entrypoint", f.entrypoint, nil); err != nil {
		return err
	}
	if c.Cmd, err = parseCommand("cmd", f.cmd, nil); err != nil {
		return err
	}
	c.Env = f.envs
	for _, e := range c.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("parse --env %q: want KEY=VALUE", e)
		}
	}
	c.WorkingDir, c.User, c.StopSignal = f.workdir, f.user, f.stopSignal
	if c.Labels, err = keyValues("label", f.labels); err != nil {
		return err
	}
	if len(f.exposes) > 0 {
		c.ExposedPorts = map[string]struct{}{}
		for _, p := range f.exposes {
			port, err := parsePort(p)
			if err != nil {
				return err
			}
			c.ExposedPorts[port] = struct{}{}
		}
	}
	if len(f.volumes) > 0 {
		c.Volumes = map[string]struct{}{}
		for _, v := range f.volumes {
			if !strings.HasPrefix(v, "/") {
				return fmt.Errorf("parse --volume %q: want an absolute path", v)
			}
			c.Volumes[v] = struct{}{}
		}
	}
	switch {
	case f.healthNone && f.healthCmd != "":
		return errors.New("--health-none and --health-cmd exclude each other")
	case f.healthNone:
		c.Healthcheck = &v1.HealthConfig{Test: []string{"NONE"}}
	case f.healthCmd != "":
		test, err := parseCommand("health-cmd", f.healthCmd, []string{"CMD-SHELL"})
		if err != nil {
			return err
		}
		c.Healthcheck = &v1.HealthConfig{Test: test, Interval: f.healthInterval, Timeout: f.healthTimeout, StartPeriod: f.healthStart, Retries: f.healthRetries}
	}
	return nil
}

func runImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkimage image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f imageFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	spec, err := f.imageSpec()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(f.tmp, "mkimage-")
	if err != nil {
		return fmt.Errorf("create scratch directory: %w", err)
	}
	defer os.RemoveAll(work)
	img, err := buildImage(spec, work)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("digest image: %w", err)
	}
	out := f.out
	if out.layout != "" {
		lp, err := openLayout(out.layout)
		if err != nil {
			return err
		}
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": out.layoutTag()})); err != nil {
			return fmt.Errorf("write image to OCI layout %s: %w", out.layout, err)
		}
	}
	if out.push != "" {
		ref, _ := name.ParseReference(out.push, name.Insecure)
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push image %s: %w", out.push, err)
		}
	}
	fmt.Fprintln(stdout, digest)
	return nil
}

func runIndex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkimage index", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		out    output
		images listFlag
		docker bool
	)
	out.register(fs)
	fs.Var(&images, "image", "a pushed single-platform image to include (repeatable)")
	fs.BoolVar(&docker, "docker", false, "make a Docker manifest list instead of an OCI index")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if err := out.check(); err != nil {
		return err
	}
	if len(images) == 0 {
		return errors.New("no images: give --image REF for each platform")
	}
	var imgs []v1.Image
	for _, s := range images {
		ref, err := name.ParseReference(s, name.Insecure)
		if err != nil {
			return fmt.Errorf("parse --image %q: %w", s, err)
		}
		img, err := remote.Image(ref, remote.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("fetch image %s: %w", s, err)
		}
		imgs = append(imgs, img)
	}
	idx, err := buildIndex(imgs, docker)
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("digest index: %w", err)
	}
	if out.layout != "" {
		lp, err := openLayout(out.layout)
		if err != nil {
			return err
		}
		if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": out.layoutTag()})); err != nil {
			return fmt.Errorf("write index to OCI layout %s: %w", out.layout, err)
		}
	}
	if out.push != "" {
		ref, _ := name.ParseReference(out.push, name.Insecure)
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push index %s: %w", out.push, err)
		}
	}
	fmt.Fprintln(stdout, digest)
	return nil
}

// parseCommand reads a JSON array as is; any other string is shell form,
// run by /bin/sh -c (or, with prefix, e.g. CMD-SHELL for healthchecks).
func parseCommand(flagName, s string, prefix []string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(strings.TrimSpace(s), "[") {
		var out []string
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, fmt.Errorf("parse --%s %q: not a JSON array of strings: %w", flagName, s, err)
		}
		return out, nil
	}
	if prefix != nil {
		return append(append([]string{}, prefix...), s), nil
	}
	return []string{"/bin/sh", "-c", s}, nil
}

func keyValues(flagName string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parse --%s %q: want KEY=VALUE", flagName, kv)
		}
		m[k] = v
	}
	return m, nil
}

func parsePort(s string) (string, error) {
	port, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
		return "", fmt.Errorf("parse --expose %q: want PORT[/tcp|udp|sctp] with PORT in 1-65535", s)
	}
	return fmt.Sprintf("%d/%s", n, proto), nil
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// layerFlags collects --layer flags; option flags attach to the last one.
type layerFlags struct {
	specs []LayerSpec
}

func (l *layerFlags) String() string { return "" }

func (l *layerFlags) Set(s string) error {
	kind, p, _ := strings.Cut(s, ":")
	switch kind {
	case "dir", "overlay", "tar":
		if p == "" {
			return fmt.Errorf("want %s:PATH", kind)
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if (kind == "tar") == st.IsDir() {
			return fmt.Errorf("%s is not a %s source", p, kind)
		}
	case "empty":
		if p != "" {
			return errors.New("empty takes no path")
		}
	default:
		return fmt.Errorf("unknown kind %q (want dir:PATH, overlay:PATH, tar:PATH or empty)", kind)
	}
	l.specs = append(l.specs, LayerSpec{Kind: kind, Path: p})
	return nil
}

type layerOptFlag struct {
	layers *layerFlags
	opt    string
}

func layerOpt(l *layerFlags, opt string) *layerOptFlag { return &layerOptFlag{l, opt} }

func (f *layerOptFlag) String() string { return "" }

func (f *layerOptFlag) Set(s string) error {
	if len(f.layers.specs) == 0 {
		return errors.New("give a --layer before it")
	}
	cur := &f.layers.specs[len(f.layers.specs)-1]
	switch f.opt {
	case "whiteout":
		cur.Whiteouts = append(cur.Whiteouts, s)
	case "opaque":
		cur.Opaque = append(cur.Opaque, s)
	case "exclude":
		cur.Exclude = append(cur.Exclude, s)
	case "chown":
		u, g, ok := strings.Cut(s, ":")
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return errors.New("want numeric UID:GID")
		}
		cur.Owner = &[2]int{uid, gid}
	}
	return nil
}
