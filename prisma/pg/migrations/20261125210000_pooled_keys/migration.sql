-- CreateTable
CREATE TABLE "PooledKey" (
    "id" TEXT NOT NULL,
    "bits" INTEGER NOT NULL,
    "spki" BYTEA NOT NULL,
    "keyEnc" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PooledKey_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "PooledKey_bits_createdAt_idx" ON "PooledKey"("bits", "createdAt");
