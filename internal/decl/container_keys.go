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
	{"AddDevice", Supported, "a host device node bound in and allowed (HOST-PATH[:PATH][:PERMISSIONS]); optional devices (-PATH) are errors", (*ctr).planAddDevice},
	{"AddHost", Supported, "a line of the machine's /etc/hosts (NAME[;NAME...]:ADDRESS), written by berth _etc-files when the unit starts and bound in", (*ctr).planAddHost},
	{"Annotation", Ignored, "OCI annotations have no nspawn equivalent", nil},
	{"AppArmor", Rejected, "nspawn applies no AppArmor profile", nil},
	{"AutoUpdate", Ignored, "berth does not update images on its own; run berth pull and restart", nil},
	{"CgroupsMode", Partial, "split and enabled are what every machine has (a delegated cgroup of the unit); other modes are errors", (*ctr).planCgroupsMode},
	{"ContainerName", Supported, "the machine name (default: the file name without .container)", (*ctr).planContainerName},
	{"ContainersConfModule", Rejected, "containers.conf modules are podman configuration", nil},
	{"DNS", Supported, "a name server of the machine's /etc/resolv.conf, written when the unit starts and bound in; none: no resolv.conf", (*ctr).planDNS},
	{"DNSOption", Supported, "an options entry of the machine's /etc/resolv.conf (the host's when none is given)", (*ctr).planDNSOption},
	{"DNSSearch", Supported, "a search domain of the machine's /etc/resolv.conf (the host's when none is given; . for none)", (*ctr).planDNSSearch},
	{"DropCapability", Supported, "DropCapability= of the machine", (*ctr).planDropCapability},
	{"Entrypoint", Supported, "replaces the image's Entrypoint (and drops its Cmd, as podman does)", (*ctr).planEntrypoint},
	{"Environment", Supported, "environment assignments (later ones win), after the image's", (*ctr).planEnvironment},
	{"EnvironmentFile", Supported, "a host file of KEY=VALUE lines (relative to the declaration), bound into the machine and read by berth-init when it starts: over the image's environment, under Environment=", (*ctr).planEnvironmentFile},
	{"EnvironmentHost", Rejected, "the host's environment is not passed into machines", nil},
	{"Exec", Supported, "the command: replaces the image's Cmd", (*ctr).planExec},
	{"ExposeHostPort", Ignored, "like EXPOSE, it publishes nothing", nil},
	{"GIDMap", Rejected, "explicit GID maps are not converted; machines get a private 64K range", nil},
	{"GlobalArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"Group", Supported, "the group of User= (as user:group)", (*ctr).planGroup},
	{"GroupAdd", Supported, "supplementary groups of the command (names from the machine's /etc/group, or IDs), added by berth-init; keep-groups is an error", (*ctr).planGroupAdd},
	{"HealthCmd", Supported, "the check NAME-health.service runs in the machine (berth compose _health; ready once it passed); none for no check", (*ctr).planHealthCmd},
	{"HealthInterval", Supported, "time between checks (default 30s); disable: no check runs", (*ctr).planHealthInterval},
	{"HealthLogDestination", Partial, "local: the last results are kept in /run/berth/health/MACHINE.json; other destinations are errors", (*ctr).planHealthLogDestination},
	{"HealthMaxLogCount", Ignored, "berth keeps the last 5 results", nil},
	{"HealthMaxLogSize", Ignored, "berth keeps 4 KiB of output per result", nil},
	{"HealthOnFailure", Partial, "none, or stop (the machine's unit is bound to the health unit, which exits when the machine turns unhealthy); kill and restart are errors: systemd cannot kill or restart a unit when another fails", (*ctr).planHealthOnFailure},
	{"HealthRetries", Supported, "failures in a row that make the machine unhealthy (default 3)", (*ctr).planHealthRetries},
	{"HealthStartPeriod", Supported, "time after the start in which failures do not count (default 0s)", (*ctr).planHealthStartPeriod},
	{"HealthStartupCmd", Rejected, "berth's health watcher has no separate startup check; use HealthStartPeriod=", nil},
	{"HealthStartupInterval", Rejected, "berth's health watcher has no separate startup check; use HealthStartPeriod=", nil},
	{"HealthStartupRetries", Rejected, "berth's health watcher has no separate startup check; use HealthStartPeriod=", nil},
	{"HealthStartupSuccess", Rejected, "berth's health watcher has no separate startup check; use HealthStartPeriod=", nil},
	{"HealthStartupTimeout", Rejected, "berth's health watcher has no separate startup check; use HealthStartPeriod=", nil},
	{"HealthTimeout", Supported, "time one check may take (default 30s)", (*ctr).planHealthTimeout},
	{"HostName", Supported, "the machine's host name", (*ctr).planHostName},
	{"HttpProxy", Partial, "false is what berth does; true (podman's default) is a warning: berth passes no proxy variables from the host", (*ctr).planHTTPProxy},
	{"IP", Supported, "the machine's address on its network (IPv4, in the subnet; default: allocated by the generator)", (*ctr).planIP},
	{"IP6", Rejected, "IPv6 addresses are not supported: berth networks are IPv4", nil},
	{"Image", Supported, "the image, pulled into berth's store when the unit starts and it is missing", (*ctr).planImage},
	{"Label", Supported, "recorded as Label= in the unit's [X-Berth] section (systemd ignores it; berth keeps no other metadata for generated machines)", (*ctr).planLabel},
	{"LogDriver", Partial, "journald and passthrough are what every machine has (output goes to the journal); none discards the output (StandardOutput=null); other drivers are errors", (*ctr).planLogDriver},
	{"LogOpt", Ignored, "journald options are set on the host", nil},
	{"Mask", Partial, "paths (colon-separated) masked with nspawn's Inaccessible=; each must exist in the machine, or the start fails (podman skips missing ones)", (*ctr).planMask},
	{"Memory", Supported, "MemoryMax= of the unit", (*ctr).planMemory},
	{"Mount", Partial, "type=bind, volume (NAME.volume or a name) and tmpfs with source, destination, ro, volume-nocopy, tmpfs-size, tmpfs-mode; other types and options are errors", (*ctr).planMount},
	{"Network", Partial, "NAME.network or a network name (with ip=, alias=, interface_name=), host or none; default: the default bridge network. Bridges make the machine share the host's users (PrivateUsers=no); joining another container is an error", (*ctr).planNetwork},
	{"NetworkAlias", Supported, "another name of the machine in the hosts files of the machines on its networks", (*ctr).planNetworkAlias},
	{"NoNewPrivileges", Supported, "NoNewPrivileges= of the machine", (*ctr).planNoNewPrivileges},
	{"Notify", Partial, "false (default): the unit is started once the machine is; healthy: once HealthCmd= passed (ExecStartPost= waits); true is an error: berth-init does not relay the command's sd_notify", (*ctr).planNotify},
	{"PidsLimit", Supported, "TasksMax= of the unit", (*ctr).planPidsLimit},
	{"Pod", Rejected, "pods do not exist under berth; use a .compose project", nil},
	{"PodmanArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"PublishPort", Supported, "[[IP:]HOSTPORT:]CONTAINERPORT[/tcp|udp] (ranges too): a socket unit on the host and a proxy to the machine's address, loopback included; a port without a host port is an error", (*ctr).planPublishPort},
	{"Pull", Supported, "when the unit pulls its image as it starts: missing (default), always, newer or never", (*ctr).planPull},
	{"ReadOnly", Supported, "a read-only root file system", (*ctr).planReadOnly},
	{"ReadOnlyTmpfs", Partial, "with ReadOnly=, true (default) adds a tmpfs on /var/tmp (nspawn mounts /run, /tmp and /dev/shm as tmpfs anyway); false is a warning: those stay writable", (*ctr).planReadOnlyTmpfs},
	{"ReloadCmd", Supported, "ExecReload= running the command in the machine (berth exec)", (*ctr).planReloadCmd},
	{"ReloadSignal", Supported, "ExecReload= sending the signal to the machine's leader (machinectl kill), which berth-init forwards to the command", (*ctr).planReloadSignal},
	{"RemapGid", Rejected, "deprecated in podman; use UserNS=", nil},
	{"RemapUid", Rejected, "deprecated in podman; use UserNS=", nil},
	{"RemapUidSize", Rejected, "deprecated in podman; use UserNS=", nil},
	{"RemapUsers", Rejected, "deprecated in podman; use UserNS=", nil},
	{"Retry", Supported, "how many times a failed pull is tried again (default 3)", (*ctr).planRetry},
	{"RetryDelay", Supported, "the pause between pull tries (default 2s, doubling)", (*ctr).planRetryDelay},
	{"Rootfs", Rejected, "machines run images; an existing tree is `berth create`'s job", nil},
	{"RunInit", Supported, "berth-init always runs as PID 1 and reaps zombies", (*ctr).planRunInit},
	{"SeccompProfile", Rejected, "seccomp profiles are not converted; nspawn applies its own filter", nil},
	{"Secret", Rejected, "berth has no secret store; bind a root-only file with Volume=HOST-PATH:/run/secrets/NAME:ro", nil},
	{"SecurityLabelDisable", Rejected, "SELinux labels are not converted", nil},
	{"SecurityLabelFileType", Rejected, "SELinux labels are not converted", nil},
	{"SecurityLabelLevel", Rejected, "SELinux labels are not converted", nil},
	{"SecurityLabelNested", Rejected, "SELinux labels are not converted", nil},
	{"SecurityLabelType", Rejected, "SELinux labels are not converted", nil},
	{"ServiceName", Supported, "the generated unit's name (default: NAME.service)", (*ctr).planServiceName},
	{"ShmSize", Supported, "the size of the tmpfs on /dev/shm (64m, 1g, bytes)", (*ctr).planShmSize},
	{"StartWithPod", Rejected, "pods do not exist under berth", nil},
	{"StopSignal", Supported, "the signal berth-init passes to the command to stop it", (*ctr).planStopSignal},
	{"StopTimeout", Supported, "TimeoutStopSec= (seconds; 0 kills at once; default 10)", (*ctr).planStopTimeout},
	{"SubGIDMap", Rejected, "subordinate ID maps are not converted; machines get a private 64K range", nil},
	{"SubUIDMap", Rejected, "subordinate ID maps are not converted; machines get a private 64K range", nil},
	{"Sysctl", Partial, "net.* sysctls, set by berth-init in the machine's own network namespace when it starts; other sysctls are errors (nspawn mounts the rest of /proc/sys read-only), and so is net.* with Network=host", (*ctr).planSysctl},
	{"Timezone", Supported, "local: the host's zone (nspawn's default); a zone name: the host's /usr/share/zoneinfo/ZONE bound over /etc/localtime", (*ctr).planTimezone},
	{"Tmpfs", Supported, "a tmpfs at PATH[:OPTIONS]", (*ctr).planTmpfs},
	{"UIDMap", Rejected, "explicit UID maps are not converted; machines get a private 64K range", nil},
	{"Ulimit", Supported, "Limit*= of the machine (NAME=SOFT[:HARD], -1 for unlimited)", (*ctr).planUlimit},
	{"Unmask", Rejected, "nspawn's own protection of /proc and /sys cannot be lifted per path", nil},
	{"User", Supported, "the user the command runs as (name or uid, resolved in the machine)", (*ctr).planUser},
	{"UserNS", Partial, "auto (or private, or unset): a private 64K range nspawn picks; host: the host's users (PrivateUsers=no); keep-id and other modes are errors", (*ctr).planUserNS},
	{"VolatileTmp", Partial, "true is what every nspawn machine has (a tmpfs on /tmp); false is a warning", (*ctr).planVolatileTmp},
	{"Volume", Partial, "[SOURCE:]PATH[:OPTIONS]: a host path (relative to the declaration), NAME.volume or a volume name (ROOT/volumes/NAME, created and filled from the image when empty); options ro, rw, z, Z, copy, nocopy, rbind; others are errors", (*ctr).planVolume},
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
		switch {
		case name == "":
			k.err(containerGroup, e, "%q is not NAME=VALUE", kv)
			continue
		case !found:
			// podman would take it from its own environment.
			k.err(containerGroup, e, "%q has no value: a machine does not see the host's environment; give %s=VALUE", kv, kv)
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
			k.err(containerGroup, e, "%s", machine.Reason(err))
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
	if e.Value == "healthy" {
		k.more.health.notify = true
		return
	}
	k.more.health.notify = false
	if b, ok := k.boolean(e); ok && b {
		// nspawn takes READY=1 only from the machine's PID 1.
		k.err(containerGroup, e, "berth-init does not relay the command's sd_notify messages; the unit is started once the machine is (use healthy with HealthCmd= to wait for the command)")
	}
}

func (k *ctr) planLogDriver(e Entry) {
	switch e.Value {
	case "journald", "passthrough", "":
		k.more.discardOutput = false
	case "none":
		k.more.discardOutput = true
	default:
		k.err(containerGroup, e, "log driver %q is not available; output goes to the journal", e.Value)
	}
}

func (k *ctr) planMemory(e Entry) {
	v := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(e.Value, "b"), "B"))
	k.spec.Limits.MemoryMax = v
	if err := k.spec.Limits.Validate(); err != nil {
		k.err(containerGroup, e, "%s", machine.Reason(err))
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
		k.err(containerGroup, e, "%s", machine.Reason(err))
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
		k.err(containerGroup, e, "%s", machine.Reason(err))
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
		k.err(containerGroup, e, "%s", machine.Reason(err))
		return
	}
	k.spec.Security.Rlimits = append(k.spec.Security.Rlimits, r)
}

// boolean reads a systemd boolean.
func (k *ctr) boolean(e Entry) (bool, bool) { return k.conv.boolean(containerGroup, e) }

// words splits a value with systemd's quoting rules, reporting bad ones.
func (k *ctr) words(e Entry) ([]string, bool) {
	w, err := SplitWords(e.Value)
	if err != nil {
		k.err(containerGroup, e, "%v", err)
		return nil, false
	}
	return w, true
}
