package main

// Random types (built with reflect) and random values of them, from fixed seeds.

import (
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"time"
)

type randGen struct {
	r    *rand.Rand
	maps int // how many more maps of this stream may have more than one entry
}

var leafTypes = []reflect.Type{
	reflect.TypeOf(false), reflect.TypeOf(0), reflect.TypeOf(int8(0)), reflect.TypeOf(int16(0)),
	reflect.TypeOf(int32(0)), reflect.TypeOf(int64(0)), reflect.TypeOf(uint(0)), reflect.TypeOf(uint8(0)),
	reflect.TypeOf(uint16(0)), reflect.TypeOf(uint32(0)), reflect.TypeOf(uint64(0)),
	reflect.TypeOf(float32(0)), reflect.TypeOf(0.0), reflect.TypeOf(complex64(0)), reflect.TypeOf(0i),
	reflect.TypeOf(""), reflect.TypeOf([]byte(nil)), timeType,
}

var keyTypes = []reflect.Type{
	reflect.TypeOf(0), reflect.TypeOf(int16(0)), reflect.TypeOf(uint32(0)), reflect.TypeOf(""),
	reflect.TypeOf(int64(0)),
}

func (g *randGen) typ(depth int) reflect.Type {
	if depth == 0 || g.r.Intn(3) == 0 {
		return leafTypes[g.r.Intn(len(leafTypes))]
	}
	switch g.r.Intn(4) {
	case 0:
		return reflect.SliceOf(g.typ(depth - 1))
	case 1:
		return reflect.ArrayOf(1+g.r.Intn(4), g.typ(depth-1))
	case 2:
		return reflect.MapOf(keyTypes[g.r.Intn(len(keyTypes))], g.typ(depth-1))
	}
	var fields []reflect.StructField
	for i, n := 0, 1+g.r.Intn(5); i < n; i++ {
		t := g.typ(depth - 1)
		// Not *time.Time: gob sends that as an unnamed GobEncoder, which only a target
		// type could tell from any other.
		if g.r.Intn(5) == 0 && t != timeType {
			t = reflect.PtrTo(t)
		}
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d_%d", i, g.r.Intn(100)), Type: t})
	}
	return reflect.StructOf(fields)
}

var alphabet = []rune("abcxyz019_-./ é世🙂")

// Zones with whole minutes either side of UTC, and seconds east only (see time-offset-seconds
// in fixed.go for west).
var zones = []*time.Location{time.UTC, time.FixedZone("", 3600), time.FixedZone("", -330*60),
	time.FixedZone("", 20700), time.FixedZone("", 3662), time.FixedZone("", 0), time.FixedZone("", 50400),
	time.FixedZone("", -36000)}

func (g *randGen) intValue(bits int) int64 {
	switch g.r.Intn(8) {
	case 0:
		return 0
	case 1:
		return -1 << (bits - 1)
	case 2:
		return 1<<(bits-1) - 1
	}
	n := g.r.Int63() >> (62 - g.r.Intn(bits-1)) // below 2^(bits-1)
	if g.r.Intn(2) == 0 {
		n = -n
	}
	return n
}

func (g *randGen) uintValue(bits int) uint64 {
	switch g.r.Intn(8) {
	case 0:
		return 0
	case 1:
		return math.MaxUint64 >> (64 - bits)
	}
	return g.r.Uint64() >> (64 - 1 - g.r.Intn(bits))
}

// floatValue is a float of any size and sign, sometimes a special one; NaN (math.NaN()'s
// bits) only where wide is true: a float32 NaN would reach the wire with other bits.
func (g *randGen) floatValue(wide bool) float64 {
	if g.r.Intn(8) == 0 {
		special := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.MaxFloat64,
			math.SmallestNonzeroFloat64, 1, math.NaN()}
		if !wide {
			special = special[:len(special)-1]
		}
		return special[g.r.Intn(len(special))]
	}
	return g.r.NormFloat64() * math.Pow(10, float64(g.r.Intn(21)-10))
}

func (g *randGen) value(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	if t == timeType {
		if g.r.Intn(10) == 0 {
			return v
		}
		sec := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + g.r.Int63n(200*365*86400)
		nsec := []int64{0, g.r.Int63n(1000) * 1e6, g.r.Int63n(1e9)}[g.r.Intn(3)]
		v.Set(reflect.ValueOf(time.Unix(sec, nsec).In(zones[g.r.Intn(len(zones))])))
		return v
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(g.r.Intn(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(g.intValue(t.Bits()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(g.uintValue(t.Bits()))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(g.floatValue(t.Bits() == 64))
	case reflect.Complex64, reflect.Complex128:
		v.SetComplex(complex(g.floatValue(t.Bits() == 128), g.floatValue(t.Bits() == 128)))
	case reflect.String:
		s := make([]rune, g.r.Intn(9))
		for i := range s {
			s[i] = alphabet[g.r.Intn(len(alphabet))]
		}
		v.SetString(string(s))
	case reflect.Slice:
		n := g.r.Intn(4)
		if t.Elem().Kind() == reflect.Uint8 {
			b := make([]byte, g.r.Intn(7))
			g.r.Read(b)
			v.SetBytes(b)
			return v
		}
		v.Set(reflect.MakeSlice(t, n, n))
		for i := 0; i < n; i++ {
			v.Index(i).Set(g.value(t.Elem()))
		}
	case reflect.Array:
		for i := 0; i < t.Len(); i++ {
			v.Index(i).Set(g.value(t.Elem()))
		}
	case reflect.Map:
		n := g.r.Intn(3)
		if n > 1 {
			if g.maps == 0 {
				n = 1
			} else {
				g.maps--
			}
		}
		v.Set(reflect.MakeMap(t))
		for tries := 0; v.Len() < n && tries < 10; tries++ {
			v.SetMapIndex(g.value(t.Key()), g.value(t.Elem()))
		}
		if v.Len() > 1 && n < 2 { // never: keys are added only while fewer than n
			panic("map budget")
		}
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			v.Field(i).Set(g.value(t.Field(i).Type))
		}
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		p.Elem().Set(g.value(t.Elem()))
		v.Set(p)
	default:
		panic("no random value of " + t.String())
	}
	return v
}

// randomCases are n streams, each of one to three values of one random type.
func randomCases(prefix string, seed int64, n int) []*gobCase {
	g := &randGen{r: rand.New(rand.NewSource(seed))}
	var cases []*gobCase
	for i := 0; i < n; i++ {
		t := g.typ(3)
		g.maps = 3
		c := &gobCase{name: fmt.Sprintf("%s-%d", prefix, i)}
		for k, count := 0, 1+g.r.Intn(3); k < count; k++ {
			c.values = append(c.values, g.value(t).Interface())
		}
		cases = append(cases, c)
	}
	return cases
}
