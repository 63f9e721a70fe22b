package handler_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
)

// In a package the server and its clients both import:
type (
	AddParams struct {
		Xs []float64 `json:"xs"`
	}
	AddResult struct {
		Sum float64 `json:"sum"`
	}
)

var Add = rpc.NewMethod[AddParams, AddResult]("math.add")

// Register takes only a function of the declared types; discovery then
// describes them.
func ExampleRegister() {
	mux := handler.NewMux()
	handler.Register(mux, Add, func(_ context.Context, p AddParams) (AddResult, error) {
		var r AddResult
		for _, x := range p.Xs {
			r.Sum += x
		}
		return r, nil
	})
	mux.EnableDiscovery(openrpc.Info{Title: "calculator", Version: "1.0.0"})

	result, err := mux.ServeRPC(context.Background(), &rpc.Request{Method: "math.add", Params: []byte(`{"xs":[1,2.5]}`)})
	fmt.Println(string(result), err)
	_, err = mux.ServeRPC(context.Background(), &rpc.Request{Method: "math.add", Params: []byte(`{"xs":"one"}`)})
	fmt.Println(int(rpc.CodeOf(err)))

	b, _ := mux.ServeRPC(context.Background(), &rpc.Request{Method: "rpc.discover"})
	var doc openrpc.Document
	if err := json.Unmarshal(b, &doc); err != nil {
		fmt.Println(err)
		return
	}
	m := doc.Methods[0]
	params := doc.Resolve(m.Params[0].Schema)
	fmt.Println(m.Name, params.Type, params.Required, params.Properties["xs"].Items.Type)
	// Output:
	// {"sum":3.5} <nil>
	// -32602
	// math.add [object] [xs] [number]
}
