package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/project"
)

func newComposeCpCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var o project.CopyOptions
	var all bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] SERVICE:SRC DEST | SRC SERVICE:DEST",
		Short: "Copy files between the host and a service machine's tree",
		Long: `Copy a file or directory between the host and a service's machine, as
docker compose cp does. The path in the machine is resolved inside its
root filesystem, or in the volume or bind mounted there, and never leaves
it: links in the machine are not followed out. SRC/. copies a directory's
contents. The machine need not be running. Without -a, copied files belong
to root.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all {
				return unsupported("cp", "--all", "copying to every instance at once is not implemented; run cp once per --index")
			}
			svcSrc, pathSrc, srcIn := cutService(args[0])
			svcDst, pathDst, dstIn := cutService(args[1])
			var service string
			switch {
			case srcIn && dstIn:
				return fmt.Errorf("compose cp: copying between two machines is not supported; one side must be a host path")
			case srcIn:
				service, o.MachinePath, o.HostPath = svcSrc, pathSrc, args[1]
			case dstIn:
				service, o.MachinePath, o.HostPath, o.ToMachine = svcDst, pathDst, args[0], true
			default:
				return fmt.Errorf("compose cp: one side must be SERVICE:PATH")
			}
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			o.Stderr = env.Stderr
			return composeHost(env, g).Copy(cmd.Context(), name, service, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Index, "index", 1, "which instance of the service")
	f.BoolVarP(&o.Archive, "archive", "a", false, "keep owners (uid:gid) as they are")
	f.BoolVarP(&o.FollowLink, "follow-link", "L", false, "follow a symbolic link given as SRC")
	f.BoolVar(&all, "all", false, "not supported: copy to every instance")
	f.MarkHidden("all")
	return cmd
}

// cutService splits SERVICE:PATH. A host path with a ':' must be written
// with a '/' before it (./a:b), as with docker cp.
func cutService(arg string) (service, path string, ok bool) {
	i := strings.IndexByte(arg, ':')
	if i <= 0 || strings.ContainsRune(arg[:i], '/') {
		return "", arg, false
	}
	return arg[:i], arg[i+1:], true
}
