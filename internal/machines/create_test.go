package machines

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/store"
)

// TestCreateBacksAnonymousVolumes: each image VOLUME gets a host directory
// seeded with the image's content there, bound into the machine; a volume
// path that is a symlink out of the image must not seed from the host.
func TestCreateBacksAnonymousVolumes(t *testing.T) {
	h := testHost(t, command.ExecRunner{})
	img := filepath.Join(h.MachinesDir, "img")
	mustWrite(t, filepath.Join(img, "data/seed"), "from image")
	mustWrite(t, filepath.Join(h.MachinesDir, "secret/key"), "host secret")
	if err := os.Symlink("../../secret", filepath.Join(img, "evil")); err != nil {
		t.Fatal(err)
	}
	cfg := machine.ImageConfig{Cmd: []string{"/bin/app"}, Volumes: map[string]struct{}{"/data": {}, "/evil": {}, "/empty": {}, "/bound": {}}}
	s, err := machine.SpecFromImage("img", img, cfg, machine.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	s.InitBinary = "/usr/lib/berth/berth-init"
	s.Binds = []machine.Bind{{Source: "/srv/bound", Destination: "/bound"}}
	vols := filepath.Join(t.TempDir(), "volumes")
	in, err := h.Create(context.Background(), s, CreateOptions{Image: "img", VolumesDir: vols})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range in.Spec.Binds {
		got[b.Destination] = b.Source
	}
	if len(got) != 4 || got["/bound"] != "/srv/bound" {
		t.Fatalf("binds %v: want /bound kept and /data, /empty, /evil backed", got)
	}
	if b, err := os.ReadFile(filepath.Join(got["/data"], "seed")); err != nil || string(b) != "from image" {
		t.Errorf("/data not seeded from the image: %q %v", b, err)
	}
	for _, v := range []string{"/evil", "/empty"} {
		ents, err := os.ReadDir(got[v])
		if err != nil || len(ents) != 0 {
			t.Errorf("volume %s: want an empty directory, got %v %v", v, ents, err)
		}
		if !strings.HasPrefix(got[v], filepath.Join(vols, "img")+"/") {
			t.Errorf("volume %s at %s, outside %s", v, got[v], vols)
		}
	}
	nspawn, err := os.ReadFile(filepath.Join(h.NspawnDir, "img.nspawn"))
	if err != nil || !strings.Contains(string(nspawn), ":/data:idmap\n") {
		t.Errorf("settings do not bind /data with idmap:\n%s", nspawn)
	}
	if err := h.Remove(context.Background(), "img", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(vols, "img")); !os.IsNotExist(err) {
		t.Errorf("rm left the volumes: %v", err)
	}
	if _, err := os.Stat(filepath.Join(img, "data/seed")); err != nil {
		t.Errorf("rm touched the image: %v", err)
	}
}

func TestCreateFailsCleanly(t *testing.T) {
	rr := &command.RecordingRunner{Results: map[string]command.Result{}}
	h := testHost(t, rr)
	h.SystemdBooted = true
	img := filepath.Join(h.MachinesDir, "img")
	mustWrite(t, filepath.Join(img, "bin/app"), "")
	rr.Results["systemctl daemon-reload"] = command.Result{Code: 1}
	s, err := machine.SpecFromImage("img", img, machine.ImageConfig{Cmd: []string{"/bin/app"}}, machine.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	s.InitBinary = "/usr/lib/berth/berth-init"
	if _, err := h.Create(context.Background(), s, CreateOptions{Image: "img"}); err == nil || !strings.Contains(err.Error(), "daemon-reload") {
		t.Fatalf("Create = %v, want the daemon-reload failure", err)
	}
	for _, p := range []string{filepath.Join(h.NspawnDir, "img.nspawn"), filepath.Join(h.UnitDir, "berth-img.service"), filepath.Join(h.StateDir, "img.json")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("failed Create left %s", p)
		}
	}
	if _, err := h.Instance("img"); err == nil {
		t.Error("failed Create left a record")
	}
}

func TestCreateIsExclusive(t *testing.T) {
	h := testHost(t, &command.RecordingRunner{})
	unlock, err := h.lock("img")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	s := machine.Spec{Name: "img", Directory: filepath.Join(h.MachinesDir, "img"), Argv: []string{"/bin/app"}, InitBinary: "/usr/lib/berth/berth-init"}
	if _, err := h.Create(context.Background(), s, CreateOptions{Image: "img"}); !errors.Is(err, ErrBusy) {
		t.Errorf("Create while locked = %v, want ErrBusy", err)
	}
	if err := h.Remove(context.Background(), "img", false); !errors.Is(err, ErrBusy) {
		t.Errorf("Remove while locked = %v, want ErrBusy", err)
	}
}

// TestCreateWithoutIdmappedMounts: where the volumes directory's file
// system cannot do idmapped mounts (overlayfs, NFS), anonymous volumes stay
// in the root filesystem, which nspawn chowns into the machine's range; an
// idmapped bind from such a file system is refused with advice, for create
// and run alike, while noidmap binds and --private-users=no still work.
func TestCreateWithoutIdmappedMounts(t *testing.T) {
	h := testHost(t, &command.RecordingRunner{})
	vols := filepath.Join(t.TempDir(), "volumes")
	var probed []string
	h.IdmapSupported = func(dir string) (bool, error) {
		probed = append(probed, dir)
		return false, nil
	}
	img := filepath.Join(h.MachinesDir, "img")
	mustWrite(t, filepath.Join(img, "data/seed"), "from image")
	cfg := machine.ImageConfig{Cmd: []string{"/bin/app"}, Volumes: map[string]struct{}{"/data": {}}}
	s, err := machine.SpecFromImage("img", img, cfg, machine.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	s.InitBinary = "/usr/lib/berth/berth-init"
	opts := CreateOptions{Image: "img", VolumesDir: vols}

	in, err := h.Create(context.Background(), s, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Spec.Binds) != 0 || in.VolumesDir != "" {
		t.Errorf("volumes bound without idmapped mounts: %+v, volumes dir %q", in.Spec.Binds, in.VolumesDir)
	}
	if _, err := os.Stat(vols); err == nil {
		t.Errorf("%s created for volumes that are not used", vols)
	}
	// The probe looked at the nearest directory that exists.
	if len(probed) != 1 || probed[0] != filepath.Dir(vols) {
		t.Errorf("probed %q, want [%s]", probed, filepath.Dir(vols))
	}
	if err := h.Remove(context.Background(), "img", false); err != nil {
		t.Fatal(err)
	}

	bound := s
	bound.Binds = []machine.Bind{{Source: "/srv/data", Destination: "/srv", Idmap: true}}
	if _, err := h.Create(context.Background(), bound, opts); !errors.Is(err, machine.ErrInvalidSpec) || !strings.Contains(err.Error(), "noidmap") {
		t.Errorf("create with an idmapped bind on a file system without idmapped mounts: %v", err)
	}
	if _, err := h.Run(context.Background(), bound, RunOptions{}); !errors.Is(err, machine.ErrInvalidSpec) || !strings.Contains(err.Error(), "noidmap") {
		t.Errorf("run with an idmapped bind on a file system without idmapped mounts: %v", err)
	}
	if _, err := h.Planned(bound, opts); !errors.Is(err, machine.ErrInvalidSpec) {
		t.Errorf("planned (dry run) with an idmapped bind: %v", err)
	}
	bound.Binds[0].Idmap = false
	if _, err := h.Create(context.Background(), bound, opts); err != nil {
		t.Errorf("create with a noidmap bind: %v", err)
	}
}

// TestCreateCopiesImageConfig: a machine copied from an image and
// resolving its image at start gets a copy of the image's config next to
// its tree (the image's own stays), and rm removes the copy only.
func TestCreateCopiesImageConfig(t *testing.T) {
	h := testHost(t, command.ExecRunner{})
	img := filepath.Join(h.MachinesDir, "img")
	mustWrite(t, filepath.Join(img, "bin/app"), "")
	imgConfig := store.ConfigPath(h.MachinesDir, "img")
	mustWrite(t, imgConfig, `{"config":{"Cmd":["/bin/app"]}}`)
	s := machine.Spec{Name: "web", Directory: filepath.Join(h.MachinesDir, "web"), InitBinary: "/usr/lib/berth/berth-init"}
	s.ResolveAtStart(store.ConfigPath(h.MachinesDir, "web"), machine.Overrides{Cmd: []string{"--serve"}})
	if _, err := h.Create(context.Background(), s, CreateOptions{Image: "img"}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(s.ImageConfig); err != nil || string(b) != `{"config":{"Cmd":["/bin/app"]}}` {
		t.Errorf("machine's image config %q, %v", b, err)
	}
	if err := h.Remove(context.Background(), "web", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.ImageConfig); !os.IsNotExist(err) {
		t.Errorf("rm left the machine's image config: %v", err)
	}
	if _, err := os.Stat(imgConfig); err != nil {
		t.Errorf("rm removed the image's config: %v", err)
	}

	// An image whose config is gone cannot give a copy one: create fails
	// and leaves nothing behind.
	os.Remove(imgConfig)
	if _, err := h.Create(context.Background(), s, CreateOptions{Image: "img"}); err == nil || !strings.Contains(err.Error(), "pull the image again") {
		t.Fatalf("create without the image's config: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.MachinesDir, "web")); !os.IsNotExist(err) {
		t.Errorf("failed create left the copied tree: %v", err)
	}
	// Nor can a machine on the image's own tree start without it.
	s.Name, s.Directory, s.ImageConfig = "img", img, imgConfig
	if _, err := h.Create(context.Background(), s, CreateOptions{Image: "img"}); err == nil || !strings.Contains(err.Error(), "pull the image again") {
		t.Fatalf("create on the image's tree without its config: %v", err)
	}
}
