package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/spinecdp/spine/schemas/canon"
)

// allTopics are the topics Spine uses, with the configs they are created
// with: the six channels, the DLQ, the compacted profile stream and the
// identity log.
func (c *Config) allTopics() map[string]map[string]*string {
	compact := "compact"
	ts := make(map[string]map[string]*string)
	for _, ch := range canon.Channels {
		ts[c.topic(ch)] = nil
	}
	ts[c.dlqTopic()] = nil
	ts[c.TopicPrefix+"profiles"] = map[string]*string{"cleanup.policy": &compact}
	ts[c.TopicPrefix+"identity"] = nil
	return ts
}

// ensureTopics creates missing topics when Config.CreateTopics, then waits
// until the consumed topics and the DLQ exist, retrying with backoff: a
// broker that is still starting is not an error. It returns only when they
// exist or ctx ends.
func (c *Consumer) ensureTopics(ctx context.Context) error {
	adm := kadm.NewClient(c.cl)
	need := append(slices.Clone(c.topics), c.cfg.dlqTopic())
	wait := c.newBackoff()
	for {
		err := c.tryTopics(ctx, adm, need)
		if err == nil {
			return nil
		}
		c.log.Warn("topics not ready; retrying", "attempt", wait.attempt+1, "backoff", wait.next(), "err", err)
		if !wait.sleep(ctx) {
			return fmt.Errorf("consumer: topics: %w", errors.Join(err, ctx.Err()))
		}
	}
}

// tryTopics makes one attempt. A failed creation is not final by itself:
// without the right to create topics, topics an operator created do.
func (c *Consumer) tryTopics(ctx context.Context, adm *kadm.Client, need []string) error {
	var createErr error
	if c.cfg.CreateTopics {
		createErr = c.createTopics(ctx, adm)
	}
	details, err := adm.ListTopics(ctx, need...)
	if err != nil {
		return errors.Join(createErr, fmt.Errorf("list topics: %w", err))
	}
	var missing []string
	for _, t := range need {
		d, ok := details[t]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return errors.Join(createErr, fmt.Errorf("missing topics %v", missing))
	}
	if createErr != nil {
		c.log.Warn("could not create every topic; the ones consumed exist", "err", createErr)
	}
	return nil
}

// createTopics creates every topic Spine uses that does not exist yet.
func (c *Consumer) createTopics(ctx context.Context, adm *kadm.Client) error {
	// CreateTopics takes one config for all its topics: group by config.
	var plain, compacted []string
	var compactCfg map[string]*string
	for t, cfg := range c.cfg.allTopics() {
		if cfg == nil {
			plain = append(plain, t)
		} else {
			compacted, compactCfg = append(compacted, t), cfg
		}
	}
	var errs []error
	for _, g := range []struct {
		topics []string
		cfg    map[string]*string
	}{{plain, nil}, {compacted, compactCfg}} {
		if len(g.topics) == 0 {
			continue
		}
		slices.Sort(g.topics)
		resps, err := adm.CreateTopics(ctx, int32(c.cfg.Partitions), int16(c.cfg.ReplicationFactor), g.cfg, g.topics...)
		if err != nil {
			errs = append(errs, fmt.Errorf("create topics: %w", err))
			continue
		}
		for _, r := range resps.Sorted() {
			switch {
			case r.Err == nil:
				c.log.Info("created topic", "topic", r.Topic, "partitions", r.NumPartitions)
			case errors.Is(r.Err, kerr.TopicAlreadyExists):
			default:
				errs = append(errs, fmt.Errorf("create topic %s: %w", r.Topic, r.Err))
			}
		}
	}
	return errors.Join(errs...)
}
