package compose

// planDependsOn is the planner of depends_on: the entries, with docker's
// default condition; planDeps checks them against the other services.
func (c *svcPlanner) planDependsOn() {
	for _, dep := range sortedKeys(c.svc.DependsOn) {
		d := c.svc.DependsOn[dep]
		cond := DepCondition(d.Condition)
		if cond == "" {
			cond = DepStarted
		}
		c.sp.Deps = append(c.sp.Deps, DepPlan{Service: dep, Condition: cond, Required: d.Required, Restart: d.Restart})
	}
}

// planDeps checks every dependency once all services are planned: the
// target must exist, have a healthcheck for service_healthy, and be able
// to complete for service_completed_successfully (it becomes a oneshot).
func (pl *planner) planDeps() {
	for _, sp := range pl.plan.Services {
		var kept []DepPlan
		for _, d := range sp.Deps {
			at := "depends_on." + d.Service + ".condition"
			target, ok := pl.svcs[d.Service]
			if !ok {
				// compose-go drops optional dependencies on disabled
				// services; a required one missing is its error already.
				continue
			}
			switch d.Condition {
			case DepStarted:
			case DepHealthy:
				if target.Health == nil {
					pl.f.svc(Error, sp.Name, at, "service_healthy, but %q has no healthcheck berth knows (define healthcheck: on it)", d.Service)
				}
			case DepCompleted:
				target.Oneshot = true
				if pl.drafts[d.Service].m.Restart.Policy == "always" {
					pl.f.svc(Error, sp.Name, at, "service_completed_successfully, but %q restarts always and so never completes", d.Service)
				}
			default:
				pl.f.svc(Error, sp.Name, at, "unknown condition %q", d.Condition)
			}
			kept = append(kept, d)
		}
		sp.Deps = kept
	}
}
