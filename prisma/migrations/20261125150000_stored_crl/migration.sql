-- CreateTable
CREATE TABLE "CrlRecord" (
    "caId" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "thisUpdate" DATETIME NOT NULL,
    "nextUpdate" DATETIME NOT NULL,
    "issuedAt" DATETIME NOT NULL,
    "revokedCount" INTEGER NOT NULL,
    "der" BLOB NOT NULL,

    PRIMARY KEY ("caId", "number")
);
