package openrpc_test

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/wsrpc/wsrpc/openrpc"
)

// SchemaOf follows encoding/json: omitempty fields are not required, nil
// slices and pointers may be null, and a named struct type is a component.
func ExampleComponents_SchemaOf() {
	type Item struct {
		Name  string   `json:"name"`
		Tags  []string `json:"tags,omitempty"`
		Next  *Item    `json:"next,omitempty"`
		Price float64  `json:"price"`
	}
	var c openrpc.Components
	s := c.SchemaOf(reflect.TypeFor[[]Item]())
	b, _ := json.Marshal(s)
	fmt.Println(string(b))
	b, _ = json.Marshal(c.Schemas["Item"])
	fmt.Println(string(b))
	// Output:
	// {"type":["array","null"],"items":{"$ref":"#/components/schemas/Item"}}
	// {"type":"object","properties":{"name":{"type":"string"},"next":{"anyOf":[{"$ref":"#/components/schemas/Item"},{"type":"null"}]},"price":{"type":"number"},"tags":{"type":["array","null"],"items":{"type":"string"}}},"required":["name","price"]}
}
