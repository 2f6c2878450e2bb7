package decl

import (
	"strconv"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/machine"
)

// ContainerKeys is the support table of the [Container] group: every key
// of podman quadlet's, so a podman user's file either converts or is
// refused naming the key. A test keeps it complete and sorted.
var ContainerKeys = []KeyRule{
	{"AddCapability", Supported, "Capability= of the machine (names with or without CAP_, ALL)", (*ctr).planAddCapability},
	{"AddDevice", Rejected, "device nodes are not converted yet", nil},
	{"AddHost", Rejected, "extra hosts entries are not converted yet", nil},
	{"Annotation", Ignored, "OCI annotations have no nspawn equivalent", nil},
	{"AutoUpdate", Ignored, "berth does not update images on its own; run berth pull and restart", nil},
	{"CgroupsMode", Rejected, "the cgroup mode is fixed by systemd-nspawn (Delegate=yes)", nil},
	{"ContainerName", Supported, "the machine name (default: the file name without .container)", (*ctr).planContainerName},
	{"ContainersConfModule", Rejected, "containers.conf modules are podman configuration", nil},
	{"DNS", Rejected, "DNS servers are not converted yet", nil},
	{"DNSOption", Rejected, "resolver options are not converted yet", nil},
	{"DNSSearch", Rejected, "DNS search domains are not converted yet", nil},
	{"DropCapability", Supported, "DropCapability= of the machine", (*ctr).planDropCapability},
	{"Entrypoint", Supported, "replaces the image's Entrypoint (and drops its Cmd, as podman does)", (*ctr).planEntrypoint},
	{"Environment", Supported, "environment assignments (later ones win), after the image's", (*ctr).planEnvironment},
	{"EnvironmentFile", Rejected, "environment files are not converted yet", nil},
	{"EnvironmentHost", Rejected, "the host's environment is not passed into machines", nil},
	{"Exec", Supported, "the command: replaces the image's Cmd", (*ctr).planExec},
	{"ExposeHostPort", Ignored, "like EXPOSE, it publishes nothing", nil},
	{"GIDMap", Rejected, "explicit GID maps are not converted; machines get a private 64K range", nil},
	{"GlobalArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"Group", Supported, "the group of User= (as user:group)", (*ctr).planGroup},
	{"GroupAdd", Rejected, "supplementary groups are not converted yet", nil},
	{"HealthCmd", Rejected, "health checks are not converted yet", nil},
	{"HealthInterval", Rejected, "health checks are not converted yet", nil},
	{"HealthLogDestination", Rejected, "health checks are not converted yet", nil},
	{"HealthMaxLogCount", Rejected, "health checks are not converted yet", nil},
	{"HealthMaxLogSize", Rejected, "health checks are not converted yet", nil},
	{"HealthOnFailure", Rejected, "health checks are not converted yet", nil},
	{"HealthRetries", Rejected, "health checks are not converted yet", nil},
	{"HealthStartPeriod", Rejected, "health checks are not converted yet", nil},
	{"HealthStartupCmd", Rejected, "startup health checks are not converted yet", nil},
	{"HealthStartupInterval", Rejected, "startup health checks are not converted yet", nil},
	{"HealthStartupRetries", Rejected, "startup health checks are not converted yet", nil},
	{"HealthStartupSuccess", Rejected, "startup health checks are not converted yet", nil},
	{"HealthStartupTimeout", Rejected, "startup health checks are not converted yet", nil},
	{"HealthTimeout", Rejected, "health checks are not converted yet", nil},
	{"HostName", Supported, "the machine's host name", (*ctr).planHostName},
	{"IP", Rejected, "fixed addresses are not converted yet", nil},
	{"IP6", Rejected, "IPv6 addresses are not supported", nil},
	{"Image", Supported, "the image, pulled into berth's store when the unit starts and it is missing", (*ctr).planImage},
	{"Label", Ignored, "labels are podman metadata; berth keeps none for generated machines", nil},
	{"LogDriver", Partial, "journald (and passthrough) are what every machine has; other drivers are errors", (*ctr).planLogDriver},
	{"LogOpt", Ignored, "journald options are set on the host", nil},
	{"Mask", Rejected, "masked paths are not converted", nil},
	{"Memory", Supported, "MemoryMax= of the unit", (*ctr).planMemory},
	{"Mount", Rejected, "--mount syntax is not converted yet; use Volume=", nil},
	{"Network", Rejected, "networks are not converted yet", nil},
	{"NetworkAlias", Rejected, "network aliases are not converted yet", nil},
	{"NoNewPrivileges", Supported, "NoNewPrivileges= of the machine", (*ctr).planNoNewPrivileges},
	{"Notify", Partial, "false (default) is what berth does: the unit is started once nspawn is; true and healthy are errors", (*ctr).planNotify},
	{"PidsLimit", Supported, "TasksMax= of the unit", (*ctr).planPidsLimit},
	{"Pod", Rejected, "pods do not exist under berth; use a .compose project", nil},
	{"PodmanArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"PublishPort", Rejected, "published ports are not converted yet", nil},
	{"Pull", Rejected, "pull policies are not converted yet", nil},
	{"ReadOnly", Supported, "a read-only root file system", (*ctr).planReadOnly},
	{"ReadOnlyTmpfs", Rejected, "read-only-tmpfs is not converted yet", nil},
	{"ReloadCmd", Rejected, "reload commands are not converted yet", nil},
	{"ReloadSignal", Rejected, "reload signals are not converted yet", nil},
	{"RemapGid", Rejected, "deprecated in podman; use UserNS=", nil},
	{"RemapUid", Rejected, "deprecated in podman; use UserNS=", nil},
	{"RemapUidSize", Rejected, "deprecated in podman; use UserNS=", nil},
	{"RemapUsers", Rejected, "deprecated in podman; use UserNS=", nil},
	{"Retry", Rejected, "pull retries are not converted yet", nil},
	{"RetryDelay", Rejected, "pull retries are not converted yet", nil},
	{"Rootfs", Rejected, "machines run images; an existing tree is `berth create`'s job", nil},
	{"RunInit", Supported, "berth-init always runs as PID 1 and reaps zombies", (*ctr).planRunInit},
	{"SeccompProfile", Rejected, "seccomp profiles are not converted; nspawn applies its own filter", nil},
	{"Secret", Rejected, "secrets are not converted yet", nil},
	{"SecurityLabelDisable", Rejected, "SELinux labels are not converted", nil},
	{"SecurityLabelFileType", Rejected, "SELinux labels are not converted", nil},
	{"SecurityLabelLevel", Rejected, "SELinux labels are not converted", nil},
	{"SecurityLabelNested", Rejected, "SELinux labels are not converted", nil},
	{"SecurityLabelType", Rejected, "SELinux labels are not converted", nil},
	{"ServiceName", Supported, "the generated unit's name (default: NAME.service)", (*ctr).planServiceName},
	{"ShmSize", Rejected, "the /dev/shm size is not converted yet", nil},
	{"StartWithPod", Rejected, "pods do not exist under berth", nil},
	{"StopSignal", Supported, "the signal berth-init passes to the command to stop it", (*ctr).planStopSignal},
	{"StopTimeout", Supported, "TimeoutStopSec= (seconds; 0 kills at once; default 10)", (*ctr).planStopTimeout},
	{"SubGIDMap", Rejected, "subordinate ID maps are not converted; machines get a private 64K range", nil},
	{"SubUIDMap", Rejected, "subordinate ID maps are not converted; machines get a private 64K range", nil},
	{"Sysctl", Rejected, "sysctls are not converted yet", nil},
	{"Timezone", Rejected, "time zones are not converted yet", nil},
	{"Tmpfs", Supported, "a tmpfs at PATH[:OPTIONS]", (*ctr).planTmpfs},
	{"UIDMap", Rejected, "explicit UID maps are not converted; machines get a private 64K range", nil},
	{"Ulimit", Supported, "Limit*= of the machine (NAME=SOFT[:HARD], -1 for unlimited)", (*ctr).planUlimit},
	{"Unmask", Rejected, "masked paths are not converted", nil},
	{"User", Supported, "the user the command runs as (name or uid, resolved in the machine)", (*ctr).planUser},
	{"UserNS", Rejected, "user namespace modes are not converted yet; machines get a private 64K range", nil},
	{"VolatileTmp", Rejected, "deprecated in podman; use Tmpfs=/tmp", nil},
	{"Volume", Partial, "HOST-PATH:PATH[:ro] binds; named volumes are not converted yet", (*ctr).planVolume},
	{"WorkingDir", Supported, "the command's working directory", (*ctr).planWorkingDir},
}

func (k *ctr) planImage(e Entry) {
	if e.Value == "" || strings.ContainsAny(e.Value, " \t") {
		k.err(containerGroup, e, "%q is not an image reference", e.Value)
		return
	}
	k.image = e.Value
}

func (k *ctr) planContainerName(e Entry) {
	k.spec.Name = e.Value
	k.nameEntry = e
}

func (k *ctr) planServiceName(e Entry) {
	if e.Value == "" || strings.ContainsAny(e.Value, "/ \t") {
		k.err(containerGroup, e, "%q is not a unit name", e.Value)
		return
	}
	k.service = strings.TrimSuffix(e.Value, ".service") + ".service"
}

func (k *ctr) planExec(e Entry) {
	argv, ok := k.words(e)
	if ok {
		k.ov.Cmd = argv
	}
}

func (k *ctr) planEntrypoint(e Entry) {
	// quadlet passes Entrypoint= as one word (podman --entrypoint takes
	// a JSON array or a single command); a JSON array is a list.
	if strings.HasPrefix(e.Value, "[") {
		argv, ok := k.words(Entry{Key: e.Key, Value: strings.NewReplacer("[", " ", "]", " ", ",", " ").Replace(e.Value), Path: e.Path, Line: e.Line})
		if ok {
			k.ov.Entrypoint = argv
		}
		return
	}
	k.ov.Entrypoint = []string{e.Value}
}

func (k *ctr) planEnvironment(e Entry) {
	words, ok := k.words(e)
	if !ok {
		return
	}
	for _, kv := range words {
		name, _, found := strings.Cut(kv, "=")
		if !found || name == "" {
			k.err(containerGroup, e, "%q is not NAME=VALUE", kv)
			continue
		}
		k.ov.Env = append(k.ov.Env, kv)
	}
}

func (k *ctr) planUser(e Entry) {
	_, group, _ := strings.Cut(k.ov.User, ":")
	k.ov.User = e.Value
	if group != "" {
		k.ov.User += ":" + group // Group= came first
	}
}

func (k *ctr) planGroup(e Entry) {
	user, _, _ := strings.Cut(k.ov.User, ":")
	if user == "" {
		user = "0" // podman: a group alone runs as root with that group
	}
	k.ov.User = user + ":" + e.Value
}

func (k *ctr) planWorkingDir(e Entry) {
	if !strings.HasPrefix(e.Value, "/") {
		k.err(containerGroup, e, "%q is not an absolute path", e.Value)
		return
	}
	k.ov.WorkingDir = e.Value
}

func (k *ctr) planHostName(e Entry) {
	if !machine.ValidHostName(e.Value) {
		k.err(containerGroup, e, "%q is not a valid host name", e.Value)
		return
	}
	k.spec.Hostname = e.Value
}

func (k *ctr) planAddCapability(e Entry) {
	k.spec.Security.Capabilities = append(k.spec.Security.Capabilities, k.capabilities(e)...)
}

func (k *ctr) planDropCapability(e Entry) {
	k.spec.Security.DropCapabilities = append(k.spec.Security.DropCapabilities, k.capabilities(e)...)
}

func (k *ctr) capabilities(e Entry) []string {
	var out []string
	for _, n := range strings.Fields(e.Value) {
		c, err := machine.Capability(n)
		if err != nil {
			k.err(containerGroup, e, "%s", specMsg(err))
			continue
		}
		out = append(out, c)
	}
	return out
}

func (k *ctr) planNoNewPrivileges(e Entry) {
	if b, ok := k.boolean(e); ok {
		k.spec.Security.NoNewPrivileges = b
	}
}

func (k *ctr) planReadOnly(e Entry) {
	if b, ok := k.boolean(e); ok {
		k.spec.ReadOnly = b
	}
}

func (k *ctr) planRunInit(e Entry) { k.boolean(e) }

func (k *ctr) planNotify(e Entry) {
	if b, ok := k.boolean(e); ok && b {
		k.err(containerGroup, e, "berth cannot pass sd_notify from the command yet; the unit is started once the machine is")
	}
}

func (k *ctr) planLogDriver(e Entry) {
	switch e.Value {
	case "journald", "passthrough", "":
	default:
		k.err(containerGroup, e, "log driver %q is not available; output goes to the journal", e.Value)
	}
}

func (k *ctr) planMemory(e Entry) {
	v := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(e.Value, "b"), "B"))
	k.spec.Limits.MemoryMax = v
	if err := k.spec.Limits.Validate(); err != nil {
		k.err(containerGroup, e, "%s", specMsg(err))
		k.spec.Limits.MemoryMax = ""
	}
}

func (k *ctr) planPidsLimit(e Entry) {
	n, err := strconv.ParseInt(e.Value, 10, 64)
	switch {
	case err != nil:
		k.err(containerGroup, e, "%q is not a number", e.Value)
	case n <= 0:
		k.spec.Limits.TasksMax = "infinity" // podman: 0 and -1 mean unlimited
	default:
		k.spec.Limits.TasksMax = strconv.FormatInt(n, 10)
	}
}

func (k *ctr) planStopSignal(e Entry) {
	sig, err := machine.SignalName(e.Value)
	if err != nil {
		k.err(containerGroup, e, "%s", specMsg(err))
		return
	}
	k.spec.StopSignal = sig
}

func (k *ctr) planStopTimeout(e Entry) {
	n, err := strconv.ParseUint(e.Value, 10, 32)
	if err != nil {
		k.err(containerGroup, e, "%q is not a number of seconds", e.Value)
		return
	}
	d := time.Duration(n) * time.Second
	k.spec.StopTimeout = &d
}

func (k *ctr) planTmpfs(e Entry) {
	target, opts, _ := strings.Cut(e.Value, ":")
	t := machine.Tmpfs{Target: target, Options: opts}
	if err := t.Validate(); err != nil {
		k.err(containerGroup, e, "%s", specMsg(err))
		return
	}
	k.spec.Tmpfs = append(k.spec.Tmpfs, t)
}

func (k *ctr) planUlimit(e Entry) {
	name, limits, ok := strings.Cut(e.Value, "=")
	soft, hard, hasHard := strings.Cut(limits, ":")
	if !hasHard {
		hard = soft
	}
	s, err1 := strconv.ParseInt(soft, 10, 64)
	h, err2 := strconv.ParseInt(hard, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		k.err(containerGroup, e, "%q is not NAME=SOFT[:HARD]", e.Value)
		return
	}
	r := machine.Rlimit{Name: strings.TrimPrefix(strings.ToLower(name), "rlimit_"), Soft: s, Hard: h}
	if err := r.Validate(); err != nil {
		k.err(containerGroup, e, "%s", specMsg(err))
		return
	}
	k.spec.Security.Rlimits = append(k.spec.Security.Rlimits, r)
}

func (k *ctr) planVolume(e Entry) {
	parts := strings.Split(e.Value, ":")
	if len(parts) < 2 || len(parts) > 3 || !strings.HasPrefix(parts[0], "/") {
		k.err(containerGroup, e, "%q: only HOST-PATH:PATH[:OPTIONS] binds are converted yet", e.Value)
		return
	}
	b := machine.Bind{Source: parts[0], Destination: parts[1], Idmap: true}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				b.ReadOnly = true
			case "rw", "z", "Z":
			default:
				k.err(containerGroup, e, "volume option %q is not supported (ro, rw)", o)
				return
			}
		}
	}
	if !strings.HasPrefix(b.Destination, "/") || b.Destination == "/" {
		k.err(containerGroup, e, "%q is not an absolute path other than /", b.Destination)
		return
	}
	k.spec.Binds = append(k.spec.Binds, b)
}

// boolean reads a systemd boolean.
func (k *ctr) boolean(e Entry) (bool, bool) {
	switch strings.ToLower(e.Value) {
	case "1", "yes", "y", "true", "t", "on":
		return true, true
	case "0", "no", "n", "false", "f", "off":
		return false, true
	}
	k.err(containerGroup, e, "%q is not a boolean", e.Value)
	return false, false
}

// words splits a value with systemd's quoting rules, reporting bad ones.
func (k *ctr) words(e Entry) ([]string, bool) {
	w, err := SplitWords(e.Value)
	if err != nil {
		k.err(containerGroup, e, "%v", err)
		return nil, false
	}
	return w, true
}

// specMsg is a machine validation error without its sentinel prefix.
func specMsg(err error) string {
	return strings.TrimPrefix(err.Error(), machine.ErrInvalidSpec.Error()+": ")
}
