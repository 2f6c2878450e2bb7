package testhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry is a docker-registry running inside a test host.
type Registry struct {
	// Addr is host:port as seen from inside the test host, the registry
	// part of image references ("127.0.0.1:5000").
	Addr string
	// Unit is the systemd service that runs it.
	Unit string
	h    *Host
}

// StartRegistry runs Debian's docker-registry inside the host as an enabled
// systemd service on 127.0.0.1:port (plain HTTP, no auth, deletes allowed,
// storage under /var/lib/berth-e2e-registry-PORT), and waits until it
// answers. Being an enabled unit, it comes back after Reboot like any
// server's registry would.
func (h *Host) StartRegistry(port int) *Registry {
	h.t.Helper()
	begin := time.Now()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	unit := fmt.Sprintf("berth-e2e-registry-%d.service", port)
	config := fmt.Sprintf("/etc/berth-e2e/registry-%d.yml", port)
	h.WriteFile(config, []byte(fmt.Sprintf(`# berth end-to-end test registry
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/berth-e2e-registry-%d
  delete:
    enabled: true
http:
  addr: %s
`, port, addr)), 0o644)
	h.WriteFile("/etc/systemd/system/"+unit, []byte(fmt.Sprintf(`# berth end-to-end test registry
[Unit]
Description=berth e2e registry on %s

[Service]
ExecStart=/usr/bin/docker-registry serve %s
Restart=on-failure

[Install]
WantedBy=multi-user.target
`, addr, config)), 0o644)
	h.MustRun("systemctl", "enable", "--now", unit)
	r := &Registry{Addr: addr, Unit: unit, h: h}
	if err := r.waitReady(30 * time.Second); err != nil {
		status, _ := h.Run(context.Background(), "systemctl", "status", "--no-pager", "-n", "20", unit)
		h.t.Fatalf("testhost %s: registry %s: %v\n%s", h.name, addr, err, status.Stdout)
	}
	h.t.Logf("testhost %s: registry on %s up in %v", h.name, addr, time.Since(begin).Round(time.Millisecond))
	return r
}

// waitReady polls /v2/ until the registry answers 200.
func (r *Registry) waitReady(timeout time.Duration) error {
	client := r.h.HTTPClient()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering /v2/ within %v (last: %s)", timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// For returns a view of the registry whose failing helpers fail t (see
// Host.For); by default they fail the test that started the registry.
func (r *Registry) For(t testing.TB) *Registry {
	return &Registry{Addr: r.Addr, Unit: r.Unit, h: r.h.For(t)}
}

// Ref returns the reference repo:tag in this registry, for example
// Ref("busybox:latest") = "127.0.0.1:5000/busybox:latest".
func (r *Registry) Ref(repoTag string) string { return r.Addr + "/" + repoTag }

func (r *Registry) parse(ref string) name.Reference {
	r.h.t.Helper()
	parsed, err := name.ParseReference(r.Ref(ref), name.Insecure)
	if err != nil {
		r.h.t.Fatalf("testhost: image reference %q: %v", ref, err)
	}
	return parsed
}

func (r *Registry) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(r.h.Transport())}
}

// PushImage pushes img as ref ("repo:tag", no registry part) from the test
// process into the registry, through the host's network namespace.
func (r *Registry) PushImage(ref string, img v1.Image) {
	r.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), r.h.opts.CommandTimeout)
	defer cancel()
	begin := time.Now()
	if err := remote.Write(r.parse(ref), img, r.remoteOptions(ctx)...); err != nil {
		r.h.t.Fatalf("testhost: push image %s: %v", r.Ref(ref), err)
	}
	r.h.t.Logf("testhost %s: pushed %s in %v", r.h.name, r.Ref(ref), time.Since(begin).Round(time.Millisecond))
}

// PushIndex pushes a multi-platform image index as ref.
func (r *Registry) PushIndex(ref string, idx v1.ImageIndex) {
	r.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), r.h.opts.CommandTimeout)
	defer cancel()
	begin := time.Now()
	if err := remote.WriteIndex(r.parse(ref), idx, r.remoteOptions(ctx)...); err != nil {
		r.h.t.Fatalf("testhost: push index %s: %v", r.Ref(ref), err)
	}
	r.h.t.Logf("testhost %s: pushed index %s in %v", r.h.name, r.Ref(ref), time.Since(begin).Round(time.Millisecond))
}

// Mkimage runs tools/mkimage with args on the outer machine, in the host's
// network namespace (see NetCommand), so that "--push " + r.Ref("name:tag")
// reaches this registry while layer sources are outer paths. It returns
// mkimage's stdout, the pushed digest.
//
//	reg.Mkimage("image", "--layer", "dir:"+tree, "--entrypoint", "/bin/sh", "--push", reg.Ref("bb:1"))
func (r *Registry) Mkimage(args ...string) string {
	r.h.t.Helper()
	bin := filepath.Join(r.h.buildOnce("./tools/mkimage"), "mkimage")
	ctx, cancel := context.WithTimeout(context.Background(), r.h.opts.CommandTimeout)
	defer cancel()
	begin := time.Now()
	cmd := r.h.NetCommand(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		r.h.t.Fatalf("testhost: mkimage %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	r.h.t.Logf("testhost %s: mkimage %s in %v", r.h.name, args[0], time.Since(begin).Round(time.Millisecond))
	return strings.TrimSpace(stdout.String())
}

// PushLayout pushes the image in the OCI image layout at dir (for example
// one written by tools/mkimage) as ref. The layout's index.json must list
// exactly one manifest: an image, or an index of platform images.
func (r *Registry) PushLayout(dir, ref string) {
	r.h.t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		r.h.t.Fatalf("testhost: read OCI layout %s: %v", dir, err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		r.h.t.Fatalf("testhost: read OCI layout %s: %v", dir, err)
	}
	if len(manifest.Manifests) != 1 {
		r.h.t.Fatalf("testhost: OCI layout %s lists %d manifests, want 1", dir, len(manifest.Manifests))
	}
	desc := manifest.Manifests[0]
	switch desc.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		child, err := idx.ImageIndex(desc.Digest)
		if err != nil {
			r.h.t.Fatalf("testhost: read index %s in OCI layout %s: %v", desc.Digest, dir, err)
		}
		r.PushIndex(ref, child)
	default:
		img, err := idx.Image(desc.Digest)
		if err != nil {
			r.h.t.Fatalf("testhost: read image %s in OCI layout %s: %v", desc.Digest, dir, err)
		}
		r.PushImage(ref, img)
	}
}
