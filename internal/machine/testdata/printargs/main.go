// Command printargs is the test payload of the nspawn round-trip test: it
// reports exactly what it was started with as JSON.
package main

import (
	"encoding/json"
	"os"
)

func main() {
	wd, _ := os.Getwd()
	files := map[string]string{}
	// /printargs-read is a JSON list of files to read back, so the test
	// can see that bind mounts landed where the settings file said.
	if b, err := os.ReadFile("/printargs-read"); err == nil {
		var paths []string
		if json.Unmarshal(b, &paths) == nil {
			for _, p := range paths {
				c, err := os.ReadFile(p)
				if err != nil {
					c = []byte("ERROR: " + err.Error())
				}
				files[p] = string(c)
			}
		}
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"args": os.Args, "env": os.Environ(), "uid": os.Getuid(), "gid": os.Getgid(), "cwd": wd, "files": files,
	})
}
