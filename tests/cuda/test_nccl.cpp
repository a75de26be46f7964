// The transport of a data-parallel run's tensors (dist/comm.h): MPI on host memory, or NCCL
// between GPUs for the cuda backend in a build with NCCL. Which one a run gets for each backend and
// setting; that a build with NCCL loads the library; and, on a GPU, NCCL's collectives on one rank
// (what a one-GPU machine can check: the communicator, device pointers, the stream) leave the
// values as they were and count no bytes sent. Two ranks on two GPUs: scripts/check_cuda.sh.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"
#include "dist/comm.h"
#include "dist/nccl.h"
#include "test_util.h"

namespace arwkv {
namespace {

std::string refusal(Comm& c, const std::string& mode, const Ops& ops) {
  try {
    c.set_transport(mode, ops, "x.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Transport, ChosenByBackendAndBuild) {
  Comm& c = world();
  const std::unique_ptr<Ops> cpu = make_cpu_ops(), emulated = make_cuda_emulated_ops();
  EXPECT_STREQ(c.set_transport("auto", *cpu, "x.toml"), "mpi");
  EXPECT_FALSE(c.reduces());  // one rank: nothing to move
  EXPECT_STREQ(c.set_transport("mpi", *cpu, "x.toml"), "mpi");
  EXPECT_STREQ(c.set_transport("auto", *emulated, "x.toml"), "mpi");  // the emulation's tensors are host memory
  for (const Ops* ops : {cpu.get(), emulated.get()}) {
    const std::string why = refusal(c, "nccl", *ops);
    EXPECT_NE(why.find("x.toml: [run] comm = \"nccl\""), std::string::npos) << why;
    EXPECT_NE(why.find(nccl_built() ? std::string("backend is ") + ops->name() : "no NCCL"), std::string::npos) << why;
  }
  if (cuda_available() && nccl_built()) {
    const std::unique_ptr<Ops> gpu = make_cuda_ops();
    EXPECT_STREQ(c.set_transport("auto", *gpu, "x.toml"), "nccl");
    EXPECT_FALSE(c.reduces());
    EXPECT_STREQ(c.set_transport("mpi", *gpu, "x.toml"), "mpi");
  }
  c.set_transport("auto", *cpu, "x.toml");
}

TEST(Nccl, BuildLoadsTheLibrary) {
  if (!nccl_built()) GTEST_SKIP() << "built without NCCL";
  const std::string v = nccl_version();
  EXPECT_TRUE(std::regex_match(v, std::regex(R"(2\.[0-9]+\.[0-9]+)"))) << v;
}

// Without a GPU, making the communicator fails with NCCL's reason, as an error (not a crash).
TEST(Nccl, WithoutAGpuTheCommunicatorIsAClearError) {
#ifdef ARWKV_HAVE_NCCL
  if (cuda_available()) GTEST_SKIP() << "this machine has a GPU";
  std::vector<float> x = {1, 2, 3};
  try {
    nccl::allreduce_sum(x.data(), 3, 0, 1);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NCCL: ncclCommInitRank failed: "), std::string::npos) << e.what();
  }
#else
  GTEST_SKIP() << "built without NCCL";
#endif
}

TEST(Nccl, CollectivesOnOneGpuKeepTheValues) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no usable GPU for the cuda backend: " << why;
  if (!nccl_built()) GTEST_SKIP() << "built without NCCL";
  Comm& c = world();
  const std::unique_ptr<Ops> gpu = make_cuda_ops();
  EXPECT_STREQ(c.set_transport("nccl", *gpu, "x.toml"), "nccl");
  EXPECT_TRUE(c.reduces());
  const int64_t n = 1000003;  // odd, and more than one of NCCL's chunks
  const std::vector<float> want = test::random_vector(n, 7);
  Buffer buf = gpu->alloc(static_cast<size_t>(n) * sizeof(float));
  const Tensor t{buf.data(), Shape{n}, DType::F32, gpu->device()};
  gpu->upload(t, want.data());
  c.take_bytes_sent();
  c.allreduce_sum(*gpu, t);
  c.reduce_sum(*gpu, t, 0);
  c.broadcast(*gpu, t, 0);
  std::vector<float> got(static_cast<size_t>(n));
  gpu->download(got.data(), t);
  EXPECT_EQ(got, want);
  EXPECT_EQ(c.take_bytes_sent(), 0u);
  c.set_transport("auto", *gpu, "x.toml");
}

}  // namespace
}  // namespace arwkv
