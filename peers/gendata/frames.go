package main

// The stats frames of each Knative era. Every era sends the same 40 stats (the proto eras
// 20 frames of 10), made from the frame's index by the formulas in makeStat, so that tests
// can work out sums and averages by hand.

import (
	"bytes"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

var eraNames = []string{"v02", "v06", "v07", "v08", "v10", "v12", "json", "proto", "proto-ts"}

// The Go types of the gob eras: Knative's fields, our own type names (gob matches fields
// by name, never by type name).
type NamespacedName struct{ Namespace, Name string }

type StatV02 struct {
	Time                      *time.Time
	PodName                   string
	AverageConcurrentRequests float64
	RequestCount              int32
	LameDuck                  bool
}

type StatMessageV02 struct {
	Key  string
	Stat *StatV02
}

type StatV06 struct {
	Time                             *time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     int32
	ProxiedRequestCount              int32
}

type StatMessageV06 struct {
	Key  string
	Stat StatV06
}

type StatV07 struct {
	Time                             *time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     float64
	ProxiedRequestCount              float64
}

type StatMessageV07 struct {
	Key  string
	Stat StatV07
}

type StatMessageV08 struct {
	Key  NamespacedName
	Stat StatV07
}

// Stat and StatMessage are the seed's (Knative v0.10-v0.11).
type Stat struct {
	Time                             time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     float64
	ProxiedRequestCount              float64
}

type StatMessage struct {
	Key  NamespacedName
	Stat Stat
}

type StatV12 struct {
	Time                             time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     float64
	ProxiedRequestCount              float64
	ProcessUptime                    float64
}

type StatMessageV12 struct {
	Key  NamespacedName
	Stat StatV12
}

// The JSON era (v0.16-v0.19): Knative's protobuf-generated Stat's JSON names.
type jsonStat struct {
	PodName                          string  `json:"pod_name,omitempty"`
	AverageConcurrentRequests        float64 `json:"average_concurrent_requests,omitempty"`
	AverageProxiedConcurrentRequests float64 `json:"average_proxied_concurrent_requests,omitempty"`
	RequestCount                     float64 `json:"request_count,omitempty"`
	ProxiedRequestCount              float64 `json:"proxied_request_count,omitempty"`
	ProcessUptime                    float64 `json:"process_uptime,omitempty"`
}

type jsonMessage struct {
	Key  NamespacedName
	Stat jsonStat
}

// deliveredStat is a stat as a server delivers it (tests/data/README.md), in this order.
type deliveredStat struct {
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

type frameLine struct {
	Era    string          `json:"era"`
	Frame  string          `json:"frame"`
	Opcode string          `json:"opcode"`
	Stats  []deliveredStat `json:"stats"`
}

// The first stat's time (CET, as the sender's clock), and the step between frames.
var (
	cet       = time.FixedZone("CET", 3600)
	firstTime = time.Date(2019, 3, 14, 15, 9, 27, 770464932, cet)
	frameStep = 1234567 * time.Microsecond
)

// makeStat is stat number k: every era's fields, which each era then keeps or drops.
// Single-stat eras: key i%5 (namespace ns-((i%5)%3), revision rev-(i%5)-(i%7)).
func makeStat(k int) deliveredStat {
	return deliveredStat{
		Namespace:                        fmt.Sprintf("ns-%d", (k%5)%3),
		Name:                             fmt.Sprintf("rev-%d-%d", k%5, k%7),
		PodName:                          fmt.Sprintf("activator-%d", k%5),
		AverageConcurrentRequests:        float64(k) + 0.25,
		AverageProxiedConcurrentRequests: float64(k%10) * 0.5,
		RequestCount:                     float64(k),
		ProxiedRequestCount:              float64(k % 13),
		ProcessUptime:                    float64(k) + 0.5,
	}
}

// makeProtoStat is stat j of proto frame i: one activator's revisions of ns-0.
func makeProtoStat(i, j int) deliveredStat {
	k := 10*i + j
	return deliveredStat{
		Namespace:                        "ns-0",
		Name:                             fmt.Sprintf("rev-0-%d", k%7),
		PodName:                          "activator-0",
		AverageConcurrentRequests:        float64(k%50) + 0.25,
		AverageProxiedConcurrentRequests: float64(k%10) * 0.5,
		RequestCount:                     float64(k % 100),
		ProxiedRequestCount:              float64(k % 13),
		ProcessUptime:                    float64(k) + 0.5,
	}
}

func frameTime(i int) time.Time { return firstTime.Add(time.Duration(i) * frameStep) }

func gobValue(era string, i int) any {
	s := makeStat(i)
	t := frameTime(i)
	key := s.Namespace + "/" + s.Name
	nn := NamespacedName{s.Namespace, s.Name}
	switch era {
	case "v02":
		return StatMessageV02{key, &StatV02{&t, s.PodName, s.AverageConcurrentRequests, int32(s.RequestCount), false}}
	case "v06":
		return StatMessageV06{key, StatV06{&t, s.PodName, s.AverageConcurrentRequests,
			s.AverageProxiedConcurrentRequests, int32(s.RequestCount), int32(s.ProxiedRequestCount)}}
	case "v07":
		return StatMessageV07{key, StatV07{&t, s.PodName, s.AverageConcurrentRequests,
			s.AverageProxiedConcurrentRequests, s.RequestCount, s.ProxiedRequestCount}}
	case "v08":
		return StatMessageV08{nn, StatV07{&t, s.PodName, s.AverageConcurrentRequests,
			s.AverageProxiedConcurrentRequests, s.RequestCount, s.ProxiedRequestCount}}
	case "v10":
		return StatMessage{nn, Stat{t, s.PodName, s.AverageConcurrentRequests,
			s.AverageProxiedConcurrentRequests, s.RequestCount, s.ProxiedRequestCount}}
	case "v12":
		return StatMessageV12{nn, StatV12{t, s.PodName, s.AverageConcurrentRequests,
			s.AverageProxiedConcurrentRequests, s.RequestCount, s.ProxiedRequestCount, s.ProcessUptime}}
	}
	panic("unknown gob era " + era)
}

// fromGob is the stat Go decoded from a gob era's frame.
func fromGob(era string, frame []byte) (deliveredStat, error) {
	var d deliveredStat
	dec := gob.NewDecoder(bytes.NewReader(frame))
	var tp *time.Time
	var key string
	switch era {
	case "v02":
		var m StatMessageV02
		if err := dec.Decode(&m); err != nil {
			return d, err
		}
		key, tp = m.Key, m.Stat.Time
		d.PodName, d.AverageConcurrentRequests = m.Stat.PodName, m.Stat.AverageConcurrentRequests
		d.RequestCount = float64(m.Stat.RequestCount)
	case "v06":
		var m StatMessageV06
		if err := dec.Decode(&m); err != nil {
			return d, err
		}
		key, tp, d.PodName = m.Key, m.Stat.Time, m.Stat.PodName
		d.AverageConcurrentRequests = m.Stat.AverageConcurrentRequests
		d.AverageProxiedConcurrentRequests = m.Stat.AverageProxiedConcurrentRequests
		d.RequestCount, d.ProxiedRequestCount = float64(m.Stat.RequestCount), float64(m.Stat.ProxiedRequestCount)
	case "v07", "v08":
		var st StatV07
		if era == "v07" {
			var m StatMessageV07
			if err := dec.Decode(&m); err != nil {
				return d, err
			}
			key, st = m.Key, m.Stat
		} else {
			var m StatMessageV08
			if err := dec.Decode(&m); err != nil {
				return d, err
			}
			key, st = m.Key.Namespace+"/"+m.Key.Name, m.Stat
		}
		tp, d.PodName = st.Time, st.PodName
		d.AverageConcurrentRequests, d.AverageProxiedConcurrentRequests = st.AverageConcurrentRequests, st.AverageProxiedConcurrentRequests
		d.RequestCount, d.ProxiedRequestCount = st.RequestCount, st.ProxiedRequestCount
	case "v10":
		var m StatMessage
		if err := dec.Decode(&m); err != nil {
			return d, err
		}
		key, tp, d.PodName = m.Key.Namespace+"/"+m.Key.Name, &m.Stat.Time, m.Stat.PodName
		d.AverageConcurrentRequests, d.AverageProxiedConcurrentRequests = m.Stat.AverageConcurrentRequests, m.Stat.AverageProxiedConcurrentRequests
		d.RequestCount, d.ProxiedRequestCount = m.Stat.RequestCount, m.Stat.ProxiedRequestCount
	case "v12":
		var m StatMessageV12
		if err := dec.Decode(&m); err != nil {
			return d, err
		}
		key, tp, d.PodName = m.Key.Namespace+"/"+m.Key.Name, &m.Stat.Time, m.Stat.PodName
		d.AverageConcurrentRequests, d.AverageProxiedConcurrentRequests = m.Stat.AverageConcurrentRequests, m.Stat.AverageProxiedConcurrentRequests
		d.RequestCount, d.ProxiedRequestCount = m.Stat.RequestCount, m.Stat.ProxiedRequestCount
		d.ProcessUptime = m.Stat.ProcessUptime
	}
	var rest struct{}
	if err := dec.Decode(&rest); err != io.EOF {
		return d, fmt.Errorf("%s frame holds more than one value: %v", era, err)
	}
	d.Namespace, d.Name, _ = strings.Cut(key, "/")
	if tp != nil && !tp.IsZero() {
		d.Timestamp = tp.UTC().Format(time.RFC3339Nano)
	}
	return d, nil
}

// Field numbers of Knative's stat.proto: WireStatMessages{messages=1},
// WireStatMessage{namespace=1, name=2, stat=3}, Stat{pod_name=1, the four averages and
// counts 2-5 (double), process_uptime=6 (double), timestamp=7 (int64 Unix seconds)}.
func protoFrame(stats []deliveredStat, timestamp int64) []byte {
	var frame []byte
	for _, s := range stats {
		var st []byte
		if s.PodName != "" {
			st = protowire.AppendTag(st, 1, protowire.BytesType)
			st = protowire.AppendString(st, s.PodName)
		}
		for n, f := range []float64{s.AverageConcurrentRequests, s.AverageProxiedConcurrentRequests,
			s.RequestCount, s.ProxiedRequestCount, s.ProcessUptime} {
			if f != 0 {
				st = protowire.AppendTag(st, protowire.Number(n+2), protowire.Fixed64Type)
				st = protowire.AppendFixed64(st, math.Float64bits(f))
			}
		}
		if timestamp != 0 {
			st = protowire.AppendTag(st, 7, protowire.VarintType)
			st = protowire.AppendVarint(st, uint64(timestamp))
		}
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.BytesType)
		m = protowire.AppendString(m, s.Namespace)
		m = protowire.AppendTag(m, 2, protowire.BytesType)
		m = protowire.AppendString(m, s.Name)
		m = protowire.AppendTag(m, 3, protowire.BytesType)
		m = protowire.AppendBytes(m, st)
		frame = protowire.AppendTag(frame, 1, protowire.BytesType)
		frame = protowire.AppendBytes(frame, m)
	}
	return frame
}

// fields walks one protobuf message: each field's number, and its bytes or number.
func fields(b []byte, each func(protowire.Number, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var raw []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			return fmt.Errorf("unexpected wire type %d", typ)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := each(num, raw, x); err != nil {
			return err
		}
	}
	return nil
}

// fromProto is the stats Go decoded from a protobuf frame.
func fromProto(frame []byte) ([]deliveredStat, error) {
	var out []deliveredStat
	err := fields(frame, func(_ protowire.Number, msg []byte, _ uint64) error {
		var d deliveredStat
		err := fields(msg, func(num protowire.Number, raw []byte, _ uint64) error {
			switch num {
			case 1:
				d.Namespace = string(raw)
			case 2:
				d.Name = string(raw)
			case 3:
				return fields(raw, func(num protowire.Number, raw []byte, x uint64) error {
					f := math.Float64frombits(x)
					switch num {
					case 1:
						d.PodName = string(raw)
					case 2:
						d.AverageConcurrentRequests = f
					case 3:
						d.AverageProxiedConcurrentRequests = f
					case 4:
						d.RequestCount = f
					case 5:
						d.ProxiedRequestCount = f
					case 6:
						d.ProcessUptime = f
					case 7:
						d.Timestamp = time.Unix(int64(x), 0).UTC().Format(time.RFC3339Nano)
					}
					return nil
				})
			}
			return nil
		})
		out = append(out, d)
		return err
	})
	return out, err
}

// writeEra writes one era's frames; a gob era's frames are all encoded (each by a fresh
// Encoder, as knative.dev/pkg/websocket does) before any is decoded.
func writeEra(w io.Writer, era string) error {
	var buf bytes.Buffer
	var frames [][]byte
	opcode := "binary"
	switch era {
	case "json":
		opcode = "text"
		for i := 0; i < 40; i++ {
			s := makeStat(i)
			frame, err := json.Marshal(jsonMessage{NamespacedName{s.Namespace, s.Name}, jsonStat{
				s.PodName, s.AverageConcurrentRequests, s.AverageProxiedConcurrentRequests,
				s.RequestCount, s.ProxiedRequestCount, s.ProcessUptime}})
			if err != nil {
				return err
			}
			frames = append(frames, frame)
		}
	case "proto", "proto-ts":
		for i := 0; i < 20; i++ {
			var stats []deliveredStat
			for j := 0; j < 10; j++ {
				stats = append(stats, makeProtoStat(i, j))
			}
			var ts int64
			if era == "proto-ts" {
				ts = frameTime(i).Unix()
			}
			frames = append(frames, protoFrame(stats, ts))
		}
	default:
		for i := 0; i < 40; i++ {
			var b bytes.Buffer
			if err := gob.NewEncoder(&b).Encode(gobValue(era, i)); err != nil {
				return err
			}
			frames = append(frames, b.Bytes())
		}
	}
	for _, frame := range frames {
		var stats []deliveredStat
		switch era {
		case "json":
			var m jsonMessage
			if err := json.Unmarshal(frame, &m); err != nil {
				return err
			}
			stats = []deliveredStat{{m.Key.Namespace, m.Key.Name, m.Stat.PodName,
				m.Stat.AverageConcurrentRequests, m.Stat.AverageProxiedConcurrentRequests,
				m.Stat.RequestCount, m.Stat.ProxiedRequestCount, m.Stat.ProcessUptime, ""}}
		case "proto", "proto-ts":
			s, err := fromProto(frame)
			if err != nil {
				return err
			}
			stats = s
		default:
			s, err := fromGob(era, frame)
			if err != nil {
				return err
			}
			stats = []deliveredStat{s}
		}
		if err := jsonLine(&buf, frameLine{era, hex.EncodeToString(frame), opcode, stats}); err != nil {
			return err
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}
