package compose

// Support says how berth treats a compose key.
type Support int

const (
	// Supported keys are converted fully.
	Supported Support = iota
	// Partial keys are converted for some values; the others are findings
	// (an error where ignoring them would change behaviour, else a warning).
	Partial
	// Ignored keys have no effect on how a service runs under berth; using
	// one is a warning.
	Ignored
	// Rejected keys would change behaviour berth cannot reproduce; using one
	// is an error.
	Rejected
)

func (s Support) String() string {
	switch s {
	case Supported:
		return "supported"
	case Partial:
		return "partial"
	case Ignored:
		return "ignored (warning)"
	case Rejected:
		return "rejected (error)"
	}
	return "unknown"
}

// KeyRule is one row of the support table.
type KeyRule struct {
	Key     string
	Support Support
	// How says what berth does with the key; for Ignored and Rejected keys
	// it is also the finding's message.
	How string
}

// ServiceKeys is the support table for every key of a compose service
// (compose-spec as of compose-go v2.16). A test checks it covers every field
// of types.ServiceConfig, so a new compose key cannot slip through unlisted.
var ServiceKeys = []KeyRule{
	{"annotations", Ignored, "OCI annotations have no nspawn equivalent; recorded in berth's manifest only"},
	{"attach", Ignored, "berth does not attach to output; logs are in the journal (berth compose logs)"},
	{"blkio_config", Rejected, "block I/O weights and limits are not converted yet"},
	{"build", Partial, "berth cannot build images: with image: set, build: is ignored (warning) and the image is pulled; without image: it is an error"},
	{"cap_add", Supported, "Capability= in the .nspawn file; ALL means every capability"},
	{"cap_drop", Supported, "DropCapability= in the .nspawn file"},
	{"cgroup", Rejected, "cgroup namespace mode is fixed by systemd-nspawn"},
	{"cgroup_parent", Rejected, "machines always run in machine.slice"},
	{"command", Supported, "replaces the image's Cmd"},
	{"configs", Supported, "file, environment and content sources are copied to a root-only directory and bind-mounted read-only at the target (default /NAME)"},
	{"container_name", Partial, "added as a host name other services resolve; the machine keeps its project-scoped name so projects never collide"},
	{"cpu_count", Rejected, "Windows only"},
	{"cpu_percent", Rejected, "Windows only"},
	{"cpu_period", Rejected, "CFS period tuning is not converted; use cpus"},
	{"cpu_quota", Rejected, "CFS quota tuning is not converted; use cpus"},
	{"cpu_rt_period", Rejected, "real-time scheduling budgets are not converted"},
	{"cpu_rt_runtime", Rejected, "real-time scheduling budgets are not converted"},
	{"cpu_shares", Supported, "CPUWeight= (shares*100/1024, clamped to 1..10000)"},
	{"cpus", Supported, "CPUQuota= (cpus*100%)"},
	{"cpuset", Supported, "AllowedCPUs="},
	{"credential_spec", Rejected, "Windows only"},
	{"depends_on", Supported, "Requires=/Wants= and After= on the dependency's unit; service_healthy waits for the -healthy unit, service_completed_successfully for a oneshot that must exit 0; restart: true adds PartOf="},
	{"deploy", Partial, "replicas, resources.limits (cpus, memory, pids), resources.reservations.memory, restart_policy and labels are converted; resources devices and generic_resources and mode: global are errors; placement, update_config, rollback_config and endpoint_mode are swarm-only (warning)"},
	{"develop", Ignored, "compose watch is not supported"},
	{"device_cgroup_rules", Rejected, "use devices: to name device nodes"},
	{"devices", Supported, "Bind= of the device node and DeviceAllow= with its permissions"},
	{"dns", Supported, "nameserver lines of the generated resolv.conf, bind-mounted read-only"},
	{"dns_opt", Supported, "options line of the generated resolv.conf"},
	{"dns_search", Supported, "search line of the generated resolv.conf"},
	{"dockerfile", Partial, "as build:"},
	{"domainname", Rejected, "systemd-nspawn cannot set the NIS domain name"},
	{"entrypoint", Supported, "replaces the image's Entrypoint"},
	{"env_file", Supported, "read at load time into environment (the files are not referenced by the units)"},
	{"environment", Supported, "Environment= in the .nspawn file"},
	{"expose", Supported, "recorded in the manifest; like docker, it publishes nothing"},
	{"extends", Supported, "resolved at load time"},
	{"external_links", Rejected, "links to containers outside the project are not supported"},
	{"extra_hosts", Supported, "lines of the generated hosts file"},
	{"gpus", Rejected, "GPU requests are not supported"},
	{"group_add", Rejected, "supplementary groups are not converted yet"},
	{"healthcheck", Supported, "a host-side timer runs the test inside the machine (berth compose _health); state is in the -healthy unit and berth compose ps"},
	{"hostname", Supported, "Hostname= in the .nspawn file"},
	{"image", Supported, "the machine's image, pulled into berth's store"},
	{"init", Supported, "berth-init runs as PID 1 and reaps zombies"},
	{"ipc", Partial, "private and shareable are what nspawn gives; host, service: and container: are errors"},
	{"isolation", Partial, "default is accepted; other values (Windows) are errors"},
	{"label_file", Supported, "read at load time into labels"},
	{"labels", Supported, "recorded in berth's manifest"},
	{"links", Partial, "link aliases become host names in the generated hosts file; every service already reaches every other on shared networks"},
	{"log_driver", Partial, "as logging.driver"},
	{"log_opt", Ignored, "journald options are set on the host, not per service"},
	{"logging", Partial, "output goes to the journal; driver journald, json-file, local or none are accepted (others warn) and options are ignored (warning)"},
	{"mac_address", Rejected, "fixed MAC addresses are not supported"},
	{"mem_limit", Supported, "MemoryMax="},
	{"mem_reservation", Supported, "MemoryLow="},
	{"mem_swappiness", Rejected, "cgroup v2 has no per-group swappiness"},
	{"memswap_limit", Supported, "MemorySwapMax= (memswap_limit - mem_limit; -1 is infinity)"},
	{"models", Rejected, "AI models are not supported"},
	{"name", Supported, "the service's name (set by the loader)"},
	{"net", Partial, "as network_mode"},
	{"network_mode", Partial, "bridge (default), host and none are supported; service: and container: are errors"},
	{"networks", Partial, "each network is a bridge; aliases, ipv4_address, priority, gw_priority, interface_name and use_service_name_alias are honoured; ipv6_address, link_local_ips, mac_address and driver_opts are errors"},
	{"oom_kill_disable", Rejected, "not available on cgroup v2"},
	{"oom_score_adj", Supported, "OOMScoreAdjust= in the .nspawn file"},
	{"pid", Partial, "unset is a private PID namespace; host, service: and container: are errors"},
	{"pids_limit", Supported, "TasksMax="},
	{"platform", Ignored, "berth pulls the host's platform"},
	{"ports", Supported, "a socket unit per host port (ListenStream=/ListenDatagram= on host_ip, 127.0.0.1 included) activating systemd-socket-proxyd (tcp) or berth compose _udp-proxy (udp) to the machine's address; ranges expand; a port without a host port is an error"},
	{"post_start", Rejected, "lifecycle hooks are not supported yet"},
	{"pre_start", Rejected, "lifecycle hooks are not supported yet"},
	{"pre_stop", Rejected, "lifecycle hooks are not supported yet"},
	{"privileged", Partial, "every capability (Capability=all) and no system-call filter; devices still need devices:"},
	{"profiles", Supported, "resolved at load time (--profile, COMPOSE_PROFILES)"},
	{"provider", Rejected, "provider services are not supported"},
	{"pull_policy", Ignored, "berth compose up pulls images that are missing"},
	{"pull_refresh_after", Ignored, "berth compose up pulls images that are missing"},
	{"read_only", Supported, "ReadOnly=yes in the .nspawn file"},
	{"restart", Supported, "Restart= of the machine's unit (no, always, on-failure[:N] with StartLimitBurst=, unless-stopped)"},
	{"runtime", Rejected, "the runtime is always systemd-nspawn"},
	{"scale", Supported, "N machines NAME-1..NAME-N"},
	{"secrets", Supported, "file, environment and content sources are copied to a root-only directory and bind-mounted read-only at /run/secrets/NAME or the target; mode is honoured"},
	{"security_opt", Partial, "no-new-privileges is NoNewPrivileges=yes; other options are errors"},
	{"shm_size", Supported, "size of the /dev/shm tmpfs"},
	{"stdin_open", Ignored, "services run without a terminal under systemd; use berth compose exec"},
	{"stop_grace_period", Supported, "TimeoutStopSec="},
	{"stop_signal", Supported, "KillSignal= in the .nspawn file (the signal PID 1 of the machine gets)"},
	{"storage_opt", Rejected, "storage driver options do not apply to directory machines"},
	{"sysctls", Partial, "net.* keys are set in the machine's network namespace by berth compose _netns-up; others are errors (nspawn shares the host kernel's)"},
	{"tmpfs", Supported, "TemporaryFileSystem= in the .nspawn file"},
	{"tty", Ignored, "services run without a terminal under systemd; use berth compose exec"},
	{"ulimits", Supported, "Limit*= in the .nspawn file"},
	{"umask", Rejected, "a process umask is not converted yet"},
	{"use_api_socket", Rejected, "there is no Docker API socket"},
	{"user", Supported, "berth-init switches to it before running the command (uid[:gid] or names from the machine's own /etc/passwd and /etc/group)"},
	{"userns_mode", Rejected, "user namespace modes are not converted"},
	{"uts", Rejected, "the machine always has its own host name"},
	{"volume_driver", Rejected, "only local volumes exist"},
	{"volumes", Supported, "named volumes are directories under the berth root per project (filled from the image when new, unless nocopy), binds are resolved relative to the project (created when missing unless create_host_path: false), anonymous volumes are per-instance directories; Bind=/BindReadOnly=/TemporaryFileSystem= in the .nspawn file; bind propagation and recursive other than the defaults are errors"},
	{"volumes_from", Rejected, "sharing another service's volumes is not supported yet"},
	{"working_dir", Supported, "WorkingDirectory= in the .nspawn file"},
}

// TopKeys is the support table for the project's top-level keys and the
// keys of the objects they declare.
var TopKeys = []KeyRule{
	{"name", Supported, "the project name, after -p and COMPOSE_PROJECT_NAME"},
	{"version", Ignored, "obsolete; ignored as docker compose does"},
	{"include", Supported, "resolved at load time"},
	{"services", Supported, "one machine per instance"},
	{"networks", Supported, "each network is a bridge named br-<hash>"},
	{"networks.*.name", Partial, "the default (PROJECT_KEY) or, for external networks, the host bridge to join; a name of its own on a project network (shared across projects under docker) is an error"},
	{"networks.*.enable_ipv4", Partial, "true (default) is supported; false is an error"},
	{"networks.*.driver", Partial, "bridge (default) is supported; other drivers are errors"},
	{"networks.*.driver_opts", Rejected, "bridge options are not converted"},
	{"networks.*.ipam", Partial, "config[].subnet, gateway and ip_range are honoured; driver and options other than default are errors"},
	{"networks.*.internal", Supported, "the bridge gets no forwarding to the outside"},
	{"networks.*.enable_ipv6", Rejected, "IPv6 networks are not supported yet"},
	{"networks.*.external", Partial, "an existing host bridge of that name is joined; berth neither creates nor removes it"},
	{"networks.*.attachable", Ignored, "swarm only"},
	{"networks.*.labels", Supported, "recorded in berth's manifest"},
	{"volumes", Supported, "named volumes are directories under the berth root per project"},
	{"volumes.*.name", Supported, "a name of its own makes the volume shared by every project naming it, as under docker: ROOT/volumes/NAME, created when missing"},
	{"volumes.*.driver", Partial, "local (default) is supported; other drivers are errors"},
	{"volumes.*.driver_opts", Rejected, "volume driver options (for example NFS or bind devices) are not converted"},
	{"volumes.*.external", Supported, "the directory is shared across projects and never removed by berth"},
	{"volumes.*.labels", Supported, "recorded in berth's manifest"},
	{"secrets", Supported, "file, environment and content sources"},
	{"secrets.*.external", Rejected, "external (swarm) secrets do not exist outside swarm"},
	{"secrets.*.driver", Rejected, "secret drivers are swarm only"},
	{"configs", Supported, "file, environment and content sources"},
	{"configs.*.external", Rejected, "external (swarm) configs do not exist outside swarm"},
	{"models", Rejected, "AI models are not supported"},
	{"jobs", Rejected, "run-to-completion jobs are not supported yet"},
	{"x-*", Ignored, "extension fields are for the user's own tooling; ignored without a warning by definition"},
}

func serviceRule(key string) (KeyRule, bool) {
	for _, r := range ServiceKeys {
		if r.Key == key {
			return r, true
		}
	}
	return KeyRule{}, false
}
