package cli

import "strings"

// composeShortF rewrites docker compose's -f after the logs verb
// (--follow) and the rm verb (--force): elsewhere -f is compose's --file,
// which every subcommand inherits, and cobra cannot give one shorthand
// two meanings. Only a -f after the verb is rewritten (also inside a
// cluster such as -fsv); the words before it are compose's and berth's
// own flags, and the valueFlags among them take the next word as their
// value.
func composeShortF(args []string) []string {
	long := map[string]string{"logs": "--follow", "rm": "--force"}
	valueFlags := map[string]bool{"-f": true, "--file": true, "-p": true, "--project-name": true, "--profile": true,
		"--env-file": true, "--project-directory": true, "--root": true, "--machines-dir": true}
	i := 0
	for ; i < len(args) && args[i] != "compose"; i++ {
		if valueFlags[args[i]] {
			i++
		}
	}
	for i++; i < len(args); i++ {
		a := args[i]
		if valueFlags[a] {
			i++
			continue
		}
		if a == "--" || len(a) == 0 || a[0] != '-' {
			break
		}
	}
	if i >= len(args) || long[args[i]] == "" {
		return args
	}
	f := long[args[i]]
	out := append([]string(nil), args[:i+1]...)
	for j, a := range args[i+1:] {
		if a == "--" {
			return append(out, args[i+1+j:]...)
		}
		if len(a) < 2 || a[0] != '-' || a[1] == '-' || !strings.ContainsRune(a, 'f') || strings.ContainsRune(a, '=') {
			out = append(out, a)
			continue
		}
		for _, c := range a[1:] {
			if c == 'f' {
				out = append(out, f)
			} else {
				out = append(out, "-"+string(c))
			}
		}
	}
	return out
}
