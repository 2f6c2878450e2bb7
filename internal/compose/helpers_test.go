package compose

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fakeImages knows every image but those under unpulled/: an image config
// with a plain Cmd, and a HEALTHCHECK for example/healthy.
func fakeImages(ref string) (*v1.Config, bool) {
	if strings.HasPrefix(ref, "unpulled/") {
		return nil, false
	}
	cfg := &v1.Config{
		Cmd:        []string{"/docker-entrypoint.sh", "serve"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir: "/srv",
	}
	if ref == "example/healthy" {
		cfg.Healthcheck = &v1.HealthConfig{Test: []string{"CMD", "/bin/check", "--quick"}, Retries: 2}
	}
	return cfg, true
}

func testOptions() ConvertOptions {
	return ConvertOptions{Images: fakeImages}
}

func load(t *testing.T, opts LoadOptions) *Project {
	t.Helper()
	p, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}
