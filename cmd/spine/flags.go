package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// newFlags returns a flag set for a subcommand with the --config flag.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("spine "+name, flag.ContinueOnError)
	fs.String("config", "", "YAML file of settings (keys are flag names); env: SPINE_CONFIG")
	return fs
}

// envName maps a flag to its environment variable: --max-backlog ↔ SPINE_MAX_BACKLOG.
func envName(flagName string) string {
	return "SPINE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse reads, in order of precedence, the command line, the environment
// and the --config file; defaults fill the rest. Unknown config keys are an
// error, so a typo never silently falls back to a default.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
			set[f.Name] = true
		}
	})
	if path := fs.Lookup("config").Value.String(); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
		for k, v := range m {
			f := fs.Lookup(k)
			if f == nil {
				errs = append(errs, fmt.Errorf("config %s: unknown setting %q", path, k))
				continue
			}
			if set[k] {
				continue
			}
			if err := fs.Set(k, yamlString(v)); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %s: %w", path, k, err))
			}
		}
	}
	return errors.Join(errs...)
}

// yamlString turns a YAML scalar or list into a flag's text form; lists
// become comma-separated.
func yamlString(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// splitList splits a comma-separated flag value, dropping empty parts.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// flagSetWithOptions is a flag set plus a step that turns parsed flag
// values into options (lists, for example).
type flagSetWithOptions struct {
	*flag.FlagSet
	finish func()
}

func (f *flagSetWithOptions) parse(args []string, env func(string) string) error {
	if err := parse(f.FlagSet, args, env); err != nil {
		return err
	}
	f.finish()
	return nil
}
