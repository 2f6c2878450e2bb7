package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestVolumeHelper: berth _volume as NAME-volume.service runs it makes the
// directory, and refuses a relative one.
func TestVolumeHelper(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "volumes", "systemd-data")
	if _, errOut, code := runBerth(t, nil, "_volume", "--dir", dir); code != 0 {
		t.Fatalf("_volume: %d %s", code, errOut)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("volume: %v %v", fi, err)
	}
	if _, _, code := runBerth(t, nil, "_volume", "--dir", "relative"); code == 0 {
		t.Error("a relative directory was accepted")
	}
}
