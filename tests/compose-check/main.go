// compose-check validates a Compose file with compose-go, the reference implementation of the
// Compose Specification that `docker compose` itself uses: schema validation, interpolation,
// merge of YAML anchors, and consistency checks (depends_on targets, volumes). It then checks
// signaal's own rules: every long-running service has a health check, every service that
// depends on another waits for it to be healthy, and build contexts, Dockerfiles and files
// mounted read-only from the repository exist.
//
// Usage: go run . PATH/TO/docker-compose.yml
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check docker-compose.yml")
		os.Exit(2)
	}
	file, err := filepath.Abs(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithConsistency(true),
		cli.WithNormalization(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail("%v", err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail("compose file is not valid: %v", err)
	}
	names := make([]string, 0, len(project.Services))
	for name := range project.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	problems := 0
	for _, name := range names {
		svc := project.Services[name]
		if svc.HealthCheck == nil || svc.HealthCheck.Disable || len(svc.HealthCheck.Test) == 0 {
			fmt.Fprintf(os.Stderr, "service %q has no health check\n", name)
			problems++
		}
		for dep, cfg := range svc.DependsOn {
			if cfg.Condition != "service_healthy" {
				fmt.Fprintf(os.Stderr, "service %q depends on %q without condition service_healthy\n", name, dep)
				problems++
			}
		}
		// Read-only bind mounts are configuration shipped with the repository; Docker would
		// create a missing source as an empty directory and the service would start without it.
		// (A writable one, like ./data, Docker creates on purpose.)
		for _, v := range svc.Volumes {
			if v.Type == "bind" && v.ReadOnly {
				if _, err := os.Stat(v.Source); err != nil {
					fmt.Fprintf(os.Stderr, "service %q: bind mount %s: %v\n", name, v.Source, err)
					problems++
				}
			}
		}
		if svc.Build != nil {
			if _, err := os.Stat(svc.Build.Context); err != nil {
				fmt.Fprintf(os.Stderr, "service %q: build context %s: %v\n", name, svc.Build.Context, err)
				problems++
			}
			df := svc.Build.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(svc.Build.Context, df)
			}
			if _, err := os.Stat(df); err != nil {
				fmt.Fprintf(os.Stderr, "service %q: dockerfile %s: %v\n", name, df, err)
				problems++
			}
		}
	}
	for _, name := range names {
		svc := project.Services[name]
		if svc.Build != nil && len(svc.Command) > 0 {
			cmd, _ := json.Marshal([]string(svc.Command))
			fmt.Printf("command\t%s\t%s\n", name, cmd)
		}
	}
	if problems > 0 {
		fail("%d problem(s)", problems)
	}
	fmt.Printf("valid: %d services: %v\n", len(names), names)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compose-check: "+format+"\n", args...)
	os.Exit(1)
}
