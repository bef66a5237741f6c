package main

// The wire formats of Knative's stats protocol, one per release line. The gob shapes,
// JSON keys and protobuf field numbers are those of ../../statserver/wire/stat.proto and the
// stat-frames contract; the Go type names are ours (gob matches fields by name only).

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Stat is one measurement in the form a server must deliver it: floats throughout,
// Timestamp (RFC 3339, UTC) only where the era carries the sender's time.
type Stat struct {
	Namespace                        string  `json:"namespace"`
	Name                             string  `json:"name"`
	PodName                          string  `json:"pod_name"`
	AverageConcurrentRequests        float64 `json:"average_concurrent_requests"`
	AverageProxiedConcurrentRequests float64 `json:"average_proxied_concurrent_requests"`
	RequestCount                     float64 `json:"request_count"`
	ProxiedRequestCount              float64 `json:"proxied_request_count"`
	ProcessUptime                    float64 `json:"process_uptime"`
	Timestamp                        string  `json:"timestamp,omitempty"`
}

// Era is one release line's wire format.
type Era struct {
	Name     string
	Releases string
	Text     bool // JSON text frames; all others are binary
	Batches  bool // several stats to a frame (protobuf); the others send one a frame
	// Carries trims a stat to what the era's frames hold and stamps it with the sender's
	// time where the era sends one.
	Carries func(s Stat, at time.Time) Stat
	// Encode writes one frame; the stats have been trimmed by Carries with the same time.
	Encode func(stats []Stat, at time.Time) ([]byte, error)
}

// Eras by name; "seed" is v10, the era of the project's seed server.
var Eras = map[string]*Era{
	"v02":      {Name: "v02", Releases: "v0.2-v0.4", Carries: carries(noProxied, int32Counts, noUptime, withTime), Encode: gobFrame(v02)},
	"v06":      {Name: "v06", Releases: "v0.5-v0.6", Carries: carries(int32Counts, noUptime, withTime), Encode: gobFrame(v06)},
	"v07":      {Name: "v07", Releases: "v0.7", Carries: carries(noUptime, withTime), Encode: gobFrame(v07)},
	"v08":      {Name: "v08", Releases: "v0.8-v0.9", Carries: carries(noUptime, withTime), Encode: gobFrame(v08)},
	"v10":      {Name: "v10", Releases: "v0.10-v0.11", Carries: carries(noUptime, withTime), Encode: gobFrame(v10)},
	"v12":      {Name: "v12", Releases: "v0.12-v0.15", Carries: carries(withTime), Encode: gobFrame(v12)},
	"json":     {Name: "json", Releases: "v0.16-v0.19", Text: true, Carries: carries(), Encode: jsonFrame},
	"proto":    {Name: "proto", Releases: "v0.17-v0.18", Batches: true, Carries: carries(), Encode: protoFrame(false)},
	"proto-ts": {Name: "proto-ts", Releases: "v0.19 and later", Batches: true, Carries: carries(withUnixSeconds), Encode: protoFrame(true)},
}

func init() { Eras["seed"] = Eras["v10"] }

// EraNames lists the eras for -h.
func EraNames() []string {
	var names []string
	for name := range Eras {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

type trim func(s *Stat, at time.Time)

func carries(trims ...trim) func(Stat, time.Time) Stat {
	return func(s Stat, at time.Time) Stat {
		for _, t := range trims {
			t(&s, at)
		}
		return s
	}
}

func noProxied(s *Stat, _ time.Time) {
	s.AverageProxiedConcurrentRequests, s.ProxiedRequestCount = 0, 0
}

// int32Counts: the era's counts are int32, so only what an int32 holds is sent.
func int32Counts(s *Stat, _ time.Time) {
	s.RequestCount = float64(toInt32(s.RequestCount))
	s.ProxiedRequestCount = float64(toInt32(s.ProxiedRequestCount))
}

func toInt32(f float64) int32 {
	return int32(math.Max(math.MinInt32, math.Min(math.MaxInt32, math.Trunc(f))))
}

func noUptime(s *Stat, _ time.Time) { s.ProcessUptime = 0 }

func withTime(s *Stat, at time.Time) { s.Timestamp = at.UTC().Format(time.RFC3339Nano) }

// withUnixSeconds: protobuf carries whole seconds, and 0 means "not sent".
func withUnixSeconds(s *Stat, at time.Time) {
	if at.Unix() == 0 {
		return
	}
	s.Timestamp = time.Unix(at.Unix(), 0).UTC().Format(time.RFC3339Nano)
}

// ---- gob: one message a frame, a fresh Encoder for each (as knative.dev/pkg/websocket) ----

type nsName struct{ Namespace, Name string }

type statV02 struct {
	Time                      *time.Time
	PodName                   string
	AverageConcurrentRequests float64
	RequestCount              int32
	LameDuck                  bool
}

type messageV02 struct {
	Key  string
	Stat *statV02
}

type statV06 struct {
	Time                             *time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     int32
	ProxiedRequestCount              int32
}

type messageV06 struct {
	Key  string
	Stat statV06
}

type statV07 struct {
	Time                             *time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     float64
	ProxiedRequestCount              float64
}

type messageV07 struct {
	Key  string
	Stat statV07
}

type messageV08 struct {
	Key  nsName
	Stat statV07
}

type statV10 struct {
	Time                             time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     float64
	ProxiedRequestCount              float64
}

type messageV10 struct {
	Key  nsName
	Stat statV10
}

type statV12 struct {
	Time                             time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     float64
	ProxiedRequestCount              float64
	ProcessUptime                    float64
}

type messageV12 struct {
	Key  nsName
	Stat statV12
}

func v02(s Stat, at time.Time) interface{} {
	return messageV02{Key: s.Namespace + "/" + s.Name, Stat: &statV02{
		Time: &at, PodName: s.PodName, AverageConcurrentRequests: s.AverageConcurrentRequests,
		RequestCount: toInt32(s.RequestCount)}}
}

func v06(s Stat, at time.Time) interface{} {
	return messageV06{Key: s.Namespace + "/" + s.Name, Stat: statV06{
		Time: &at, PodName: s.PodName, AverageConcurrentRequests: s.AverageConcurrentRequests,
		AverageProxiedConcurrentRequests: s.AverageProxiedConcurrentRequests,
		RequestCount:                     toInt32(s.RequestCount), ProxiedRequestCount: toInt32(s.ProxiedRequestCount)}}
}

func stat07(s Stat, at time.Time) statV07 {
	return statV07{Time: &at, PodName: s.PodName, AverageConcurrentRequests: s.AverageConcurrentRequests,
		AverageProxiedConcurrentRequests: s.AverageProxiedConcurrentRequests,
		RequestCount:                     s.RequestCount, ProxiedRequestCount: s.ProxiedRequestCount}
}

func v07(s Stat, at time.Time) interface{} {
	return messageV07{Key: s.Namespace + "/" + s.Name, Stat: stat07(s, at)}
}

func v08(s Stat, at time.Time) interface{} {
	return messageV08{Key: nsName{s.Namespace, s.Name}, Stat: stat07(s, at)}
}

func v10(s Stat, at time.Time) interface{} {
	return messageV10{Key: nsName{s.Namespace, s.Name}, Stat: statV10{
		Time: at, PodName: s.PodName, AverageConcurrentRequests: s.AverageConcurrentRequests,
		AverageProxiedConcurrentRequests: s.AverageProxiedConcurrentRequests,
		RequestCount:                     s.RequestCount, ProxiedRequestCount: s.ProxiedRequestCount}}
}

func v12(s Stat, at time.Time) interface{} {
	return messageV12{Key: nsName{s.Namespace, s.Name}, Stat: statV12{
		Time: at, PodName: s.PodName, AverageConcurrentRequests: s.AverageConcurrentRequests,
		AverageProxiedConcurrentRequests: s.AverageProxiedConcurrentRequests,
		RequestCount:                     s.RequestCount, ProxiedRequestCount: s.ProxiedRequestCount,
		ProcessUptime: s.ProcessUptime}}
}

func gobFrame(message func(Stat, time.Time) interface{}) func([]Stat, time.Time) ([]byte, error) {
	return func(stats []Stat, at time.Time) ([]byte, error) {
		if len(stats) != 1 {
			return nil, fmt.Errorf("a gob frame holds one stat, not %d", len(stats))
		}
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(message(stats[0], at)); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
}

// ---- JSON text frames (v0.16-v0.19): zero fields left out ----

type jsonStat struct {
	PodName                          string  `json:"pod_name,omitempty"`
	AverageConcurrentRequests        float64 `json:"average_concurrent_requests,omitempty"`
	AverageProxiedConcurrentRequests float64 `json:"average_proxied_concurrent_requests,omitempty"`
	RequestCount                     float64 `json:"request_count,omitempty"`
	ProxiedRequestCount              float64 `json:"proxied_request_count,omitempty"`
	ProcessUptime                    float64 `json:"process_uptime,omitempty"`
}

type jsonMessage struct {
	Key  nsName
	Stat jsonStat
}

func jsonFrame(stats []Stat, _ time.Time) ([]byte, error) {
	if len(stats) != 1 {
		return nil, fmt.Errorf("a JSON frame holds one stat, not %d", len(stats))
	}
	s := stats[0]
	return json.Marshal(jsonMessage{Key: nsName{s.Namespace, s.Name}, Stat: jsonStat{
		PodName: s.PodName, AverageConcurrentRequests: s.AverageConcurrentRequests,
		AverageProxiedConcurrentRequests: s.AverageProxiedConcurrentRequests,
		RequestCount:                     s.RequestCount, ProxiedRequestCount: s.ProxiedRequestCount,
		ProcessUptime: s.ProcessUptime}})
}

// ---- protobuf WireStatMessages (stat.proto); proto3 leaves zero fields out ----

func protoFrame(timestamps bool) func([]Stat, time.Time) ([]byte, error) {
	return func(stats []Stat, at time.Time) ([]byte, error) {
		var frame []byte
		for _, s := range stats {
			var stat []byte
			stat = appendString(stat, 1, s.PodName)
			stat = appendDouble(stat, 2, s.AverageConcurrentRequests)
			stat = appendDouble(stat, 3, s.AverageProxiedConcurrentRequests)
			stat = appendDouble(stat, 4, s.RequestCount)
			stat = appendDouble(stat, 5, s.ProxiedRequestCount)
			stat = appendDouble(stat, 6, s.ProcessUptime)
			if timestamps && at.Unix() != 0 {
				stat = protowire.AppendTag(stat, 7, protowire.VarintType)
				stat = protowire.AppendVarint(stat, uint64(at.Unix()))
			}
			var msg []byte
			msg = appendString(msg, 1, s.Namespace)
			msg = appendString(msg, 2, s.Name)
			msg = protowire.AppendTag(msg, 3, protowire.BytesType)
			msg = protowire.AppendBytes(msg, stat)
			frame = protowire.AppendTag(frame, 1, protowire.BytesType)
			frame = protowire.AppendBytes(frame, msg)
		}
		return frame, nil
	}
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendDouble(b []byte, field protowire.Number, f float64) []byte {
	if math.Float64bits(f) == 0 {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(f))
}
