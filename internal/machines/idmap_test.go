package machines

import (
	"os"
	"testing"
)

// TestIdmapSupported probes a directory of the test's own (ext4, xfs,
// btrfs or tmpfs here: all support idmapped mounts) and /proc (procfs
// never does).
func TestIdmapSupported(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatal("needs root")
		}
		t.Skip("needs root")
	}
	if ok, err := IdmapSupported(t.TempDir()); err != nil || !ok {
		t.Errorf("IdmapSupported(TempDir) = %v, %v; want true", ok, err)
	}
	if ok, err := IdmapSupported("/proc"); err != nil || ok {
		t.Errorf("IdmapSupported(/proc) = %v, %v; want false", ok, err)
	}
	if _, err := IdmapSupported("/no/such/dir"); err == nil {
		t.Error("IdmapSupported of a missing directory: no error")
	}
}
