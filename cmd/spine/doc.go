// Command spine is Spine's one binary: the embedded broker for development,
// the engine, the demo, the traffic generator, migrations and exports.
// It owns configuration (flags, SPINE_* environment, --config YAML) and the
// wiring of ingest, engine and sinks; no other package reads the
// environment.
package main
