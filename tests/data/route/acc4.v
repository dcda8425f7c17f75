// A 4-bit registered accumulator: the small design the routing tests place and route (tests/test_hdl_route.py)
module acc4(input clk, input rst, input [3:0] a, output reg [3:0] q, output zero);
  always @(posedge clk)
    if (rst) q <= 4'd0;
    else q <= q + a;
  assign zero = 1'b0;
endmodule
