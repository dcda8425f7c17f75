// Stream testbench around one generated MacUnit or W8A16 unit (module name given by `define MAC_MODULE;
// A_BITS/W_BITS = code width per lane: 8, or 16 for bf16/fp16).
// cocotb owns clk/rst (or, with TB_INTERNAL_CLOCK, the wrapper makes them) and raises `start`; from then on this wrapper feeds one beat per clock
// from the stimulus file (+STIM=path) on the falling edge and writes every out_valid beat to
// +RESULTS=path on the rising edge, so no Python runs per beat.  Stimulus line:
//   <gap cycles, decimal> <clear, hex> <in_a, hex> <in_w, hex>
// Result line: <out_acc hex> <out_overflow> <out_invalid> <out_fp32 hex, or 0>
`timescale 1ns/1ps
module mac_tb #(parameter LANES = 1, parameter ACC_W = 32, parameter A_BITS = 8, parameter W_BITS = 8) (
`ifdef TB_INTERNAL_CLOCK
    // the clock and reset are generated here: no simulator callback per clock edge
    input start,
`else
    input clk,
    input rst,
    input start,
`endif
    output reg done = 1'b0,
    output reg [31:0] n_in = 0,
    output reg [31:0] n_out = 0,
    output reg [31:0] latency = 0
);
`ifdef TB_INTERNAL_CLOCK
  reg clk = 1'b0;
  reg rst = 1'b1;
  always #5 clk = ~clk;
  initial begin
    repeat (3) @(posedge clk);
    rst <= 1'b0;
  end
`endif
  reg in_valid = 1'b0;
  reg in_clear = 1'b0;
  reg [A_BITS*LANES-1:0] in_a = 0;
  reg [W_BITS*LANES-1:0] in_w = 0;
  wire out_valid;
  wire [ACC_W-1:0] out_acc;
  wire out_overflow;
  wire out_invalid;
`ifdef HAS_FP32
  wire [31:0] out_fp32;
`else
  wire [31:0] out_fp32 = 32'd0;
`endif

  `MAC_MODULE dut (
    .clk(clk), .rst(rst), .in_valid(in_valid), .in_clear(in_clear), .in_a(in_a), .in_w(in_w),
    .out_valid(out_valid), .out_acc(out_acc), .out_overflow(out_overflow),
`ifdef HAS_FP32
    .out_fp32(out_fp32),
`endif
    .out_invalid(out_invalid)
  );

  reg [8*1024-1:0] stim_path;
  reg [8*1024-1:0] res_path;
  integer fin = 0;
  integer fout = 0;
  integer gap = 0;
  integer got = 0;
  reg [3:0] clr = 0;
  reg [A_BITS*LANES-1:0] a = 0;
  reg [W_BITS*LANES-1:0] w = 0;
  reg eof = 1'b0;
  reg opened = 1'b0;
  reg [31:0] cycle = 0;
  reg [31:0] first_in = 0;
  reg seen_out = 1'b0;

  reg pending = 1'b0;

  always @(negedge clk) begin
    if (start && !opened) begin
      if (!$value$plusargs("STIM=%s", stim_path)) $fatal(1, "mac_tb: +STIM=<file> missing");
      if (!$value$plusargs("RESULTS=%s", res_path)) $fatal(1, "mac_tb: +RESULTS=<file> missing");
      fin = $fopen(stim_path, "r");
      fout = $fopen(res_path, "w");
      if (fin == 0 || fout == 0) $fatal(1, "mac_tb: cannot open stimulus or results file");
      opened = 1'b1;
    end
    in_valid <= 1'b0;
    if (opened && !eof) begin
      if (!pending) begin
        got = $fscanf(fin, "%d %h %h %h\n", gap, clr, a, w);
        if (got == 4) pending = 1'b1;
        else eof = 1'b1;
      end
      if (pending) begin
        if (gap > 0) begin
          gap = gap - 1;        // an idle (in_valid = 0) cycle before this beat
        end else begin
          in_valid <= 1'b1;
          in_clear <= clr[0];
          in_a <= a;
          in_w <= w;
          if (n_in == 0) first_in = cycle;
          n_in = n_in + 1;
          pending = 1'b0;
        end
      end
    end
  end

  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (out_valid && opened) begin
      $fwrite(fout, "%h %b %b %h\n", out_acc, out_overflow, out_invalid, out_fp32);
      if (!seen_out) latency <= cycle - first_in;
      seen_out <= 1'b1;
      n_out <= n_out + 1;
    end
    if (eof && !done && n_out == n_in) begin
      $fclose(fout);
      done <= 1'b1;
    end
  end
endmodule
