// gointerop decodes gob streams with Go's own encoding/gob, for tests/test_gob_go_interop.py.
//
// It reads lines "KIND HEX" from stdin (KIND names one of the Go types below, HEX is a whole
// gob stream holding one value) and writes one line of JSON per input line: the decoded
// value in the canonical form of ../shared/gob-vectors/README.md (a time also gives its
// zone offset), or {"error": "..."}.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"time"
)

type Inner struct {
	A int
	B string
}

type AllKinds struct {
	B    bool
	I    int
	I8   int8
	I16  int16
	I32  int32
	I64  int64
	U    uint
	U8   uint8
	U16  uint16
	U32  uint32
	U64  uint64
	Uptr uintptr
	F32  float32
	F64  float64
	C64  complex64
	C128 complex128
	S    string
	Bs   []byte
	T    time.Time
	PT   *time.Time
}

type Containers struct {
	Ints    []int
	Strs    []string
	Arr     [3]int16
	M       map[string]float64
	MI      map[int32][]string
	Nested  map[string]map[uint8]bool
	In      Inner
	PIn     *Inner
	Ins     []Inner
	PIns    []*Inner
	ArrIn   [2]Inner
	Iface   interface{}
	Ifaces  []interface{}
	IM      map[string]interface{}
	Anon    struct{ X, Y int8 }
	Matrix  [][]float64
	ByInner map[Inner]string
}

type Leaf struct{ L []float64 }

type Node struct {
	Value  int
	Kids   []*Node
	ByName map[string]Node
}

var kinds = map[string]func() interface{}{
	"AllKinds":   func() interface{} { return new(AllKinds) },
	"Containers": func() interface{} { return new(Containers) },
	"Node":       func() interface{} { return new(Node) },
}

func init() {
	gob.RegisterName("main.Inner", Inner{})
	gob.RegisterName("main.Leaf", &Leaf{}) // registered as a pointer: values arrive as *Leaf
	gob.RegisterName("main.Node", Node{})
	gob.RegisterName("time.Time", time.Time{})
}

func float(f float64) interface{} {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

var timeType = reflect.TypeOf(time.Time{})

func render(v reflect.Value) interface{} {
	if v.Type() == timeType {
		t := v.Interface().(time.Time)
		_, offset := t.Zone()
		var off interface{} = offset
		if t.Location() == time.UTC {
			off = nil
		}
		return map[string]interface{}{"time": t.UTC().Format(time.RFC3339Nano), "offset": off}
	}
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return float(v.Float())
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		return []interface{}{float(real(c)), float(imag(c))}
	case reflect.String:
		return v.String()
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 && v.Kind() == reflect.Slice {
			return map[string]string{"bytes": base64.StdEncoding.EncodeToString(v.Bytes())}
		}
		out := []interface{}{}
		for i := 0; i < v.Len(); i++ {
			out = append(out, render(v.Index(i)))
		}
		return out
	case reflect.Map:
		out := []interface{}{}
		it := v.MapRange()
		for it.Next() {
			out = append(out, []interface{}{render(it.Key()), render(it.Value())})
		}
		return out
	case reflect.Struct:
		out := map[string]interface{}{}
		for i := 0; i < v.NumField(); i++ {
			out[v.Type().Field(i).Name] = render(v.Field(i))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return render(v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		e := v.Elem()
		name := e.Type().String()
		switch e.Type() {
		case reflect.TypeOf(Inner{}):
			name = "main.Inner"
		case reflect.TypeOf(&Leaf{}):
			name = "main.Leaf"
		case reflect.TypeOf(Node{}):
			name = "main.Node"
		case timeType:
			name = "time.Time"
		}
		return map[string]interface{}{"type": name, "value": render(e)}
	}
	panic("cannot render " + v.Type().String())
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		kind, hexed, _ := strings.Cut(in.Text(), " ")
		data, err := hex.DecodeString(hexed)
		var result interface{}
		if err == nil {
			v := kinds[kind]()
			dec := gob.NewDecoder(bytes.NewReader(data))
			if err = dec.Decode(v); err == nil {
				result = render(reflect.ValueOf(v))
			}
		}
		if err != nil {
			result = map[string]string{"error": fmt.Sprint(err)}
		}
		if err := out.Encode(result); err != nil {
			panic(err)
		}
	}
}
